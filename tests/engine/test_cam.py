"""Class activation maps and saliency, checked against independent implementations
(captum, pytorch-grad-cam, hand computations) and against each pitfall the peers'
issue trackers list: in-place ReLUs, frozen models, no_grad, reused modules,
flat maps, non-square inputs, model state."""
from __future__ import annotations

import copy
import threading
import weakref

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from captum.attr import GuidedBackprop, GuidedGradCam, LayerGradCam, Saliency
from conftest import assert_unchanged, make_user_model, snapshot
from torch import nn

import cnn_widgets as cw
from cnn_widgets.engine.cam import CAM_METHODS, CamResult, cam, cam_result, predict
from cnn_widgets.models.fashion_cnn import WEIGHTS_FILE
from cnn_widgets.render import normalize

# captum tells what it does to the inputs and ReLUs of its own copy of each model.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients"),
    pytest.mark.filterwarnings("ignore:Setting backward hooks on ReLU activations"),
    pytest.mark.usefixtures("one_thread"),
]

# Score-CAM runs one forward pass per channel; keep the other methods' options small too.
FAST = dict(samples=4, batch_size=16)


def pearson(a, b) -> float:
    a = torch.as_tensor(np.asarray(a), dtype=torch.float64).flatten()
    b = torch.as_tensor(np.asarray(b), dtype=torch.float64).flatten()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def peer_copy(module: nn.Module) -> nn.Module:
    """The peers register hooks and need parameter gradients: give them their own copy
    (one per module, reused: the peers remove their hooks after each call)."""
    twin = _twins.get(module)
    if twin is None:
        twin = _twins[module] = copy.deepcopy(module).eval()
        for param in twin.parameters():
            param.requires_grad_(True)
    return twin


_twins: "weakref.WeakKeyDictionary[nn.Module, nn.Module]" = weakref.WeakKeyDictionary()


def upsampled(attr: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(attr, size=size, mode="bilinear", align_corners=False).squeeze(1)


def captum_gradcam(module, path, x, targets, twin=None):
    """captum's Grad-CAM, upsampled like ours: (raw map, map after ReLU), each (N, H, W)."""
    twin = twin if twin is not None else peer_copy(module)
    attr = LayerGradCam(twin, twin.get_submodule(path)).attribute(x.clone(), targets, relu_attributions=False).detach()
    return upsampled(attr, x.shape[-2:]), upsampled(attr.clamp(min=0), x.shape[-2:])


# -- models --------------------------------------------------------------------------------------




# Small inputs keep the tests fast; agreement with the peers does not depend on the size.
SIZES = {"vgg16": (3, 64), "resnet18": (3, 96), "fashion_random": (1, 28)}


@pytest.fixture(scope="module")
def vgg16():
    torch.manual_seed(0)
    return cw.load_model(torchvision.models.vgg16(weights=None).eval(), input_size=(3, 64, 64))


@pytest.fixture(scope="module")
def resnet18():
    torch.manual_seed(0)
    return cw.load_model(torchvision.models.resnet18(weights=None).eval(), input_size=(3, 96, 96))


@pytest.fixture(scope="module")
def fashion_random():
    torch.manual_seed(0)
    return cw.load_model("fashion-cnn", weights=None, device="cpu")


def random_images(name: str, count: int, seed: int = 1) -> torch.Tensor:
    channels, size = SIZES[name]
    return torch.randn(count, channels, size, size, generator=torch.Generator().manual_seed(seed))


class GapNet(nn.Module):
    """conv -> ReLU -> conv -> global average pool -> linear: the setting of CAM (Zhou et al.)."""

    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 12, 3, padding=1, stride=2)
        self.head = nn.Linear(12, classes)

    def forward(self, x):
        return self.head(self.conv2(self.relu(self.conv1(x))).mean(dim=(2, 3)))


class InplaceNet(nn.Module):
    """The explained conv (conv2) is followed by an in-place activation."""

    def __init__(self, activation: nn.Module) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.act2 = activation
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(16 * 8 * 8, 5)

    def forward(self, x):
        x = self.act2(self.conv2(self.act1(self.conv1(x))))
        return self.head(self.pool(x).flatten(1))


class ReusedConvNet(nn.Module):
    """``block`` runs twice in one forward pass, and one ReLU module serves every activation."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 3, padding=1)
        self.block = nn.Conv2d(6, 6, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.head = nn.Linear(6, 4)

    def forward(self, x):
        x = self.relu(self.stem(x))
        x = self.relu(self.block(x))
        x = self.relu(self.block(x))
        return self.head(x.mean(dim=(2, 3)))


class UnsharedNet(ReusedConvNet):
    """The same network with one ReLU module per use, for the peers that need that."""

    def __init__(self) -> None:
        super().__init__()
        self.relu1, self.relu2, self.relu3 = nn.ReLU(), nn.ReLU(), nn.ReLU()

    def forward(self, x):
        x = self.relu1(self.stem(x))
        x = self.relu2(self.block(x))
        x = self.relu3(self.block(x))
        return self.head(x.mean(dim=(2, 3)))


def seeded(cls, *args):
    torch.manual_seed(0)
    return cls(*args).eval()


# -- oracles: captum and pytorch-grad-cam --------------------------------------------------------


@pytest.mark.parametrize(
    "name, layers",
    [
        ("vgg16", ["block5_conv3", "block4_conv2"]),
        ("resnet18", ["layer4.1.conv2", "layer3.0.conv1", "layer4.0.downsample.0"]),
        ("fashion_random", ["block3_conv2", "block2_conv1"]),
    ],
)
def test_gradcam_equals_captum_layer_gradcam(request, name, layers):
    model = request.getfixturevalue(name)
    x = random_images(name, 3)
    with torch.no_grad():
        top1 = model.module(x).argmax(1).tolist()
    twin = peer_copy(model.module)
    checked = 0
    for layer in layers:
        path = model.layer(layer).path
        for target, captum_target in ((None, top1), ([1, 5, 3], [1, 5, 3])):
            ours = cam_result(model, x, layer=layer + ":raw", target=target)  # the conv's own output, as captum hooks it
            theirs_raw, theirs = captum_gradcam(model.module, path, x, captum_target, twin=twin)
            assert [r.class_index for r in ours] == captum_target
            for i in range(x.shape[0]):
                assert ours[i].map.shape == theirs[i].shape == x.shape[2:]
                assert pearson(ours[i].raw, theirs_raw[i]) > 0.999
                if ours[i].map.std() > 0:  # random weights can switch a whole map off
                    assert pearson(normalize(ours[i].map.numpy()), normalize(theirs[i].numpy())) > 0.999
                    checked += 1
                else:
                    assert theirs[i].abs().max() <= 1e-6 * theirs_raw[i].abs().max()
    assert checked >= len(layers) * 4  # most of the comparisons are of non-trivial maps


def test_gradcam_on_the_shipped_model_equals_captum():
    if not WEIGHTS_FILE.exists():
        pytest.skip("the shipped fashion-cnn weights are not trained yet")
    model = cw.load_model("fashion-cnn", device="cpu")
    x = torch.stack([model.preprocess(cw.sample_image(name))[0] for name in ("sneaker", "bag", "trouser")])
    for layer in ("block3_conv2", "block2_conv2"):
        top1 = model.module(x).argmax(1).tolist()
        for target, captum_target in ((None, top1), ([0, 4, 9], [0, 4, 9])):
            ours = cam(model, x, layer=layer + ":raw", target=target, raw=True)
            theirs, _ = captum_gradcam(model.module, model.layer(layer).path, x, captum_target)
            for i in range(3):
                assert pearson(ours[i], theirs[i]) > 0.999


def test_upsampling_puts_each_cell_over_the_pixels_it_covers():
    """A 7x7 map enlarged to 28x28: cell (2, 5) covers rows 8-11 and columns 20-23, so its heat
    is centred on row 9.5 and column 21.5, symmetric about them. A half-pixel offset
    (align_corners=True centres it on row 9, column 22.5), a flip or a transposed map fails."""
    from cnn_widgets.engine.cam.core import resize

    low = torch.zeros(1, 7, 7)
    low[0, 2, 5] = 1.0
    heat = resize(low, (28, 28))[0]
    rows, cols = torch.arange(28.0), torch.arange(28.0)
    total = heat.sum()
    assert float((heat.sum(1) * rows).sum() / total) == pytest.approx(9.5, abs=1e-5)
    assert float((heat.sum(0) * cols).sum() / total) == pytest.approx(21.5, abs=1e-5)
    assert torch.allclose(heat[8:12, 20:24], heat[8:12, 20:24].flip(0).flip(1))
    assert float(heat[8:12, 20:24].min()) > float(heat.max()) / 2  # the covered pixels are the hottest


def test_gradcam_on_the_shipped_model_equals_pytorch_grad_cam_pixel_for_pixel():
    """On the shipped model's default layer (7x7, each cell 4x4 pixels), our map equals
    pytorch-grad-cam's (which upsamples with OpenCV, an independent implementation) at every
    pixel, peak included: the sneaker's and ankle boot's peaks on the background are not an
    offset, flip or scale of ours (BENCHMARKS.md, "Where fashion-cnn's Grad-CAM peaks")."""
    if not WEIGHTS_FILE.exists():
        pytest.skip("the shipped fashion-cnn weights are not trained yet")
    from pytorch_grad_cam import GradCAM

    model = cw.load_model("fashion-cnn", device="cpu")
    twin = peer_copy(model.module)
    layer = model.last_stage
    assert layer.name == "block3_conv2"
    for name in ("sneaker", "ankle_boot", "bag"):
        x = model.preprocess(cw.sample_image(name))
        result = cam_result(model, cw.sample_image(name))
        with GradCAM(model=twin, target_layers=[twin.get_submodule(layer.path)]) as peer:
            theirs = torch.as_tensor(peer(input_tensor=x.clone(), targets=[lambda out, c=result.class_index: out[c]])[0])
        ours = normalize(result.map.numpy())  # pytorch-grad-cam scales each map to [0, 1]
        assert np.abs(ours - theirs.numpy()).max() < 1e-4, name
        assert int(result.map.argmax()) == int(theirs.argmax()), name


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "layercam", "hirescam", "xgradcam"])
def test_layer_methods_equal_pytorch_grad_cam_where_no_inplace_relu_follows(resnet18, method):
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM

    peer = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "layercam": LayerCAM, "hirescam": HiResCAM, "xgradcam": XGradCAM}[method]
    x = random_images("resnet18", 2)
    twin = peer_copy(resnet18.module)
    # Random weights give gradients near 1e-4, where pytorch-grad-cam's 1e-7 guard in the
    # Grad-CAM++ denominator is not negligible; scaling the score (both sides) makes it so.
    scale = 1000.0
    # Convs followed by BatchNorm (their own output), and the default, the last stage's output.
    for layer, classes in (("layer4.1.conv2", [3, 3]), ("layer3.1.conv1", [10, 600]), ("layer4", [7, 1])):
        with peer(model=twin, target_layers=[twin.get_submodule(layer)]) as engine:
            theirs = engine(input_tensor=x.clone(), targets=[lambda out, c=c: scale * out[c] for c in classes])
        rows = torch.arange(2)
        ours = cam(resnet18, x, method, layer=layer if layer == "layer4" else layer + ":raw", target=lambda logits, c=classes: scale * logits[rows, c])
        for i in range(2):
            assert ours[i].std() > 0
            assert pearson(ours[i], theirs[i]) > 0.999


@pytest.mark.parametrize("name", ["vgg16", "resnet18", "fashion_random"])
def test_saliency_and_guided_backprop_equal_captum(request, name):
    model = request.getfixturevalue(name)
    channels, size = SIZES[name]
    size = min(size, 64)  # pixel methods have no layer resolution to keep: any size will do
    x = torch.randn(2, channels, size, size, generator=torch.Generator().manual_seed(3))
    targets = [2, 7]
    twin = peer_copy(model.module)
    for method, peer in (("saliency", Saliency), ("guided_backprop", GuidedBackprop)):
        result = cam_result(model, x, method, target=targets)
        kwargs = {"abs": False} if peer is Saliency else {}
        theirs = peer(twin).attribute(x.clone(), target=targets, **kwargs).detach()
        for i in range(2):
            ours = result[i].attribution
            assert ours.abs().max() > 0
            torch.testing.assert_close(ours, theirs[i], rtol=1e-4, atol=1e-5 * float(theirs[i].abs().max()))
            torch.testing.assert_close(result[i].map, theirs[i].abs().amax(0), rtol=1e-4, atol=1e-5 * float(theirs[i].abs().max()))
            torch.testing.assert_close(result[i].raw, theirs[i].sum(0), rtol=1e-4, atol=1e-5 * float(theirs[i].abs().max()))


def test_guided_gradcam_equals_captum(resnet18):
    x, targets, layer = random_images("resnet18", 2), [4, 9], "layer4.1.conv2"
    ours = cam_result(resnet18, x, "guided_gradcam", layer=layer, target=targets)
    twin = peer_copy(resnet18.module)
    theirs = GuidedGradCam(twin, twin.get_submodule(layer)).attribute(x.clone(), target=targets, interpolate_mode="bilinear").detach()
    for i in range(2):
        assert ours[i].attribution.abs().max() > 0
        assert pearson(ours[i].attribution, theirs[i]) > 0.999


# -- what Grad-CAM should be ---------------------------------------------------------------------


def test_gradcam_equals_relu_of_class_activation_map_with_gap_and_linear_head():
    net = seeded(GapNet)
    model = cw.load_model(net, input_size=(3, 32, 32))
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        features = net.conv2(net.relu(net.conv1(x)))  # (N, K, 16, 16)
    for target in (0, 3):
        class_map = torch.einsum("k,nkhw->nhw", net.head.weight[target].detach(), features)
        expected = upsampled(class_map.clamp(min=0).unsqueeze(1), (32, 32))
        ours = cam(model, x, layer="conv2", target=target)
        for i in range(4):
            assert expected[i].max() > 0
            scale = ours[i].max() / expected[i].max()
            torch.testing.assert_close(ours[i], expected[i] * scale, rtol=1e-4, atol=1e-6 * float(ours[i].max()))


def test_smoothgrad_without_noise_is_the_gradient_and_is_reproducible_with_noise(fashion_random):
    x = torch.randn(1, 1, 28, 28, generator=torch.Generator().manual_seed(6))
    plain = cam(fashion_random, x, "saliency", target=3, raw=True)
    smooth = cam(fashion_random, x, "smoothgrad", target=3, raw=True, samples=3, noise=0.0)
    torch.testing.assert_close(smooth, plain, rtol=1e-5, atol=1e-7)
    noisy = cam(fashion_random, x, "smoothgrad", target=3, samples=6, noise=0.2, seed=1, batch_size=4)
    assert torch.equal(noisy, cam(fashion_random, x, "smoothgrad", target=3, samples=6, noise=0.2, seed=1, batch_size=4))
    # The same noise whatever the batch size (up to float rounding of differently sized batches).
    torch.testing.assert_close(noisy, cam(fashion_random, x, "smoothgrad", target=3, samples=6, noise=0.2, seed=1))
    assert not torch.equal(noisy, cam(fashion_random, x, "smoothgrad", target=3, samples=6, noise=0.2, seed=2))


def test_several_layers_fuse_into_the_mean_of_their_scaled_maps(resnet18):
    x, layers = random_images("resnet18", 1), ["layer4.1.conv2", "layer3.1.conv2"]
    fused = cam(resnet18, x, layer=layers, target=5)[0]
    singles = [cam(resnet18, x, layer=layer, target=5)[0] for layer in layers]
    assert all(single.max() > single.min() for single in singles)
    expected = sum((s - s.min()) / (s.max() - s.min()) for s in singles) / 2
    torch.testing.assert_close(fused, expected, rtol=1e-5, atol=1e-6)


def test_default_layer_is_the_last_conv_whose_output_is_still_spatial():
    def network():
        return nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(4, 3, 1), nn.Flatten(),
        )

    model = cw.load_model(seeded(network), input_size=(3, 16, 16))
    assert [layer.output_shape[1:] for layer in model.layers] == [(16, 16), (8, 8), (1, 1)]
    result = cam_result(model, torch.randn(3, 16, 16), target=1)
    assert result.layers == ("block1_conv2",)
    assert cam_result(cw.load_model(seeded(GapNet), input_size=(3, 16, 16)), torch.randn(3, 16, 16)).layers == ("conv2",)


# -- pitfalls, one test each ---------------------------------------------------------------------


@pytest.mark.parametrize("activation", [nn.ReLU(inplace=True), nn.LeakyReLU(0.3, inplace=True)], ids=["relu", "leaky"])
def test_activation_and_gradient_are_the_same_version_despite_an_inplace_activation(activation):
    net = seeded(InplaceNet, activation)
    model = cw.load_model(net, input_size=(3, 16, 16))
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(7))
    out_of_place = {nn.ReLU: F.relu, nn.LeakyReLU: lambda t: F.leaky_relu(t, 0.3)}[type(activation)]
    # By hand, without any in-place op: A is the conv's own output, g its gradient.
    A = net.conv2(F.relu(net.conv1(x))).detach().requires_grad_(True)
    logits = net.head(net.pool(out_of_place(A)).flatten(1))
    (g,) = torch.autograd.grad(logits[:, 1].sum(), A)
    assert (A < 0).any(), "the in-place activation must change the activation for this test to mean anything"
    gradcam = (g.mean(dim=(2, 3), keepdim=True) * A).sum(1).detach()
    layercam = (g.clamp(min=0) * A).sum(1).detach()
    torch.testing.assert_close(cam(model, x, layer="conv2:raw", target=1, raw=True), gradcam, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(cam(model, x, "layercam", layer="conv2:raw", target=1, raw=True), layercam, rtol=1e-5, atol=1e-7)
    with torch.no_grad():
        assert torch.equal(net(x), model.module(x))  # the network still computes what it did


def test_frozen_models_and_models_without_parameter_gradients_work():
    trainable = seeded(InplaceNet, nn.ReLU(inplace=True))
    frozen = copy.deepcopy(trainable)
    for param in frozen.parameters():
        param.requires_grad_(False)
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(8))
    for method in ("gradcam", "gradcam++", "layercam", "saliency", "guided_gradcam"):
        expected = cam(cw.load_model(trainable, input_size=(3, 16, 16)), x, method, layer="conv1", target=0)
        ours = cam(cw.load_model(frozen, input_size=(3, 16, 16)), x, method, layer="conv1", target=0)
        assert ours.abs().max() > 0
        torch.testing.assert_close(ours, expected)
    assert all(p.grad is None and not p.requires_grad for p in frozen.parameters())
    assert all(p.grad is None and p.requires_grad for p in trainable.parameters())
    # An input that already requires grad is fine too, and is left alone.
    pixels = x.clone().requires_grad_(True)
    cam(cw.load_model(frozen, input_size=(3, 16, 16)), pixels, target=0)
    assert pixels.grad is None


def test_inside_no_grad_the_engine_enables_gradients_itself(user_model):
    before = snapshot(user_model)
    model = cw.load_model(user_model, input_size=(3, 16, 16))
    x = torch.randn(1, 3, 16, 16)
    outside = {method: cam(model, x, method) for method in ("gradcam", "saliency", "guided_backprop", "smoothgrad")}
    with torch.no_grad():
        for method, expected in outside.items():
            torch.testing.assert_close(cam(model, x, method), expected)
        assert not torch.is_grad_enabled()  # the caller's block is as it was
    assert_unchanged(user_model, before)


def test_calling_inside_inference_mode_is_a_clear_error(user_model):
    before = snapshot(user_model)
    model = cw.load_model(user_model, input_size=(3, 16, 16))
    x = torch.randn(1, 3, 16, 16)
    with torch.inference_mode():
        for method in ("gradcam", "saliency", "guided_backprop", "smoothgrad"):
            with pytest.raises(RuntimeError, match=r"call it outside that block") as error:
                cam(model, x, method)
            assert "inference_mode" in str(error.value)
        # Score-CAM only runs forward passes, so it works there.
        assert cam(model, x, "scorecam").shape == (1, 16, 16)
    assert_unchanged(user_model, before)
    # An input tensor made inside inference_mode is fine outside of it.
    with torch.inference_mode():
        inference_input = torch.randn(1, 3, 16, 16)
    assert cam(model, inference_input).shape == (1, 16, 16)


def test_a_reused_conv_is_explained_at_its_first_call():
    net = seeded(ReusedConvNet)
    model = cw.load_model(net, input_size=(3, 12, 12))
    x = torch.randn(1, 3, 12, 12, generator=torch.Generator().manual_seed(9))
    first = net.block(F.relu(net.stem(x))).detach().requires_grad_(True)
    logits = net.head(F.relu(net.block(F.relu(first))).mean(dim=(2, 3)))
    (g,) = torch.autograd.grad(logits[0, 2], first)
    expected = (g.mean(dim=(2, 3), keepdim=True) * first).sum(1).detach()
    torch.testing.assert_close(cam(model, x, layer="block:raw", target=2, raw=True), expected, rtol=1e-5, atol=1e-7)


def test_a_shared_relu_module_is_guided_at_every_call():
    shared, unshared = seeded(ReusedConvNet), seeded(UnsharedNet)
    unshared.load_state_dict(shared.state_dict())
    x = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(10))
    ours = cam_result(cw.load_model(shared, input_size=(3, 12, 12)), x, "guided_backprop", target=[1, 3])
    theirs = GuidedBackprop(peer_copy(unshared)).attribute(x.clone(), target=[1, 3]).detach()
    plain = Saliency(peer_copy(unshared)).attribute(x.clone(), target=[1, 3], abs=False).detach()
    for i in range(2):
        assert not torch.allclose(theirs[i], plain[i])  # guidance matters on this input
        torch.testing.assert_close(ours[i].attribution, theirs[i], rtol=1e-5, atol=1e-7)


def test_guided_backprop_leaves_no_trace(user_model):
    model = cw.load_model(user_model, input_size=(3, 16, 16))
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        user_model.eval()
        before_out = user_model(x)
        user_model.train()
    before = snapshot(user_model)
    cam(model, x, "guided_backprop")
    cam(model, x, "guided_gradcam")
    with pytest.raises(ValueError):
        cam(model, x, "guided_backprop", target=[0])
    assert_unchanged(user_model, before)
    assert torch._C._len_torch_function_stack() == 0
    probe = torch.tensor([-1.0, 2.0], requires_grad=True)
    (torch.relu(probe) * torch.tensor([3.0, -3.0])).sum().backward()
    assert probe.grad.tolist() == [0.0, -3.0]  # an ordinary ReLU gradient again, not a guided one
    user_model.eval()
    with torch.no_grad():
        assert torch.equal(user_model(x), before_out)


def test_flat_maps_are_zeros_never_nan(user_model):
    user_model.head.weight.data.zero_()  # the output no longer depends on the image
    model = cw.load_model(user_model, input_size=(3, 16, 16))
    x = torch.randn(2, 3, 16, 16)
    for method in CAM_METHODS:
        if method == "eigencam":
            continue  # it looks at the layer only, never at the output (tests/engine/test_cam_methods.py)
        for layer in ("block2_conv1", ["block1_conv1", "block2_conv1"]):
            for raw in (False, True):
                maps = cam(model, x, method, layer=layer, raw=raw, **FAST)
                assert torch.equal(maps, torch.zeros(2, 16, 16)), (method, layer, raw)
    constant = torch.ones(1, 3, 16, 16)  # every Score-CAM mask is flat
    assert torch.isfinite(cam(make_user_model(), constant, "scorecam")).all()
    assert np.array_equal(normalize(np.zeros((16, 16))), np.zeros((16, 16)))


def test_non_square_inputs_give_maps_of_the_input_height_and_width(resnet18, user_model):
    tiny = cw.load_model(user_model, input_size=(3, 16, 16))
    for method in CAM_METHODS:
        assert cam(tiny, torch.randn(2, 3, 24, 40), method, **FAST).shape == (2, 24, 40), method
        assert cam(tiny, torch.randn(3, 40, 24), method, **FAST).shape == (40, 24), method
    x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(11))
    theirs, _ = captum_gradcam(resnet18.module, "layer3.1.conv2", x, [1, 1])
    ours = cam(resnet18, x, layer="layer3.1.conv2", target=1, raw=True)
    assert all(pearson(ours[i], theirs[i]) > 0.999 for i in range(2))


@pytest.mark.parametrize("method", CAM_METHODS)
def test_model_state_parameter_grad_and_hooks_are_untouched(user_model, method):
    before = snapshot(user_model)
    model = cw.load_model(user_model, input_size=(3, 16, 16))
    x = torch.randn(2, 3, 16, 16)
    cam_result(model, x, method, target=[0, 1], layer=["block1_conv1", "block2_conv1"], **FAST)
    with pytest.raises(ValueError):
        cam(model, x, method, target=99, **FAST)
    assert_unchanged(user_model, before)
    assert user_model.calls, "the user's own hook still runs"


@pytest.mark.parametrize("method", CAM_METHODS)
def test_cpu_results_are_deterministic(fashion_random, method):
    x = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(12))
    first = cam(fashion_random, x, method, layer="block1_conv2", **FAST)
    assert torch.equal(first, cam(fashion_random, x, method, layer="block1_conv2", **FAST))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method", CAM_METHODS)
def test_cuda_results_equal_cpu_results(method):
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(13))
    maps = {}
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        model = cw.load_model(torchvision.models.resnet18(weights=None), input_size=(3, 64, 64), device=device)
        maps[device] = cam(model, x, method, layer="layer3.1.conv2", target=[3, 8], **FAST)
        assert maps[device].device.type == "cpu"
    scale = float(maps["cpu"].abs().max())
    torch.testing.assert_close(maps["cuda"], maps["cpu"], rtol=1e-3, atol=1e-3 * scale)


# -- targets, batches, results -------------------------------------------------------------------


def test_targets_by_index_name_list_and_callable_agree(fashion_random):
    x = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(14))
    by_index = cam(fashion_random, x, target=7)
    assert torch.equal(cam(fashion_random, x, target="Sneaker"), by_index)
    assert torch.equal(cam(fashion_random, x, target=["Sneaker", 7]), by_index)
    assert torch.equal(cam(fashion_random, x, target=torch.tensor([7, 7])), by_index)
    assert torch.equal(cam(fashion_random, x, target=np.array([7, 7])), by_index)
    assert torch.equal(cam(fashion_random, x, target=np.int64(7)), by_index)
    assert torch.equal(cam(fashion_random, x, target=lambda logits: logits[:, 7]), by_index)
    top1 = fashion_random.module(x).argmax(1).tolist()
    assert torch.equal(cam(fashion_random, x), cam(fashion_random, x, target=top1))
    # A batch is the same as its images one by one.
    for i, target in enumerate([2, 9]):
        torch.testing.assert_close(cam(fashion_random, x, target=[2, 9])[i], cam(fashion_random, x[i : i + 1], target=target)[0])


def test_bad_targets_are_explained(fashion_random):
    x = torch.randn(2, 1, 28, 28)
    for wrong in ([1], [1, 2, 3]):
        with pytest.raises(ValueError, match=f"got {len(wrong)} targets for 2 images"):
            cam(fashion_random, x, target=wrong)
    with pytest.raises(ValueError, match=r"did you mean 'Sneaker'\?"):
        cam(fashion_random, x, target="Sneakers")
    with pytest.raises(ValueError, match=r"out of range; the model has 10 classes \(0-9\)"):
        cam(fashion_random, x, target=10)
    with pytest.raises(ValueError, match=r"one score per image, shape \(2,\)"):
        cam(fashion_random, x, target=lambda logits: logits.sum())
    with pytest.raises(TypeError, match="target must be"):
        cam(fashion_random, x, target=2.5)


def test_bad_methods_and_layers_are_explained(fashion_random):
    image = cw.sample_image("sneaker")
    with pytest.raises(ValueError, match=r"unknown method 'gradcam\+'; did you mean 'gradcam\+\+'"):
        cam(fashion_random, image, "gradcam+")
    for method in ("gradcam", "saliency"):  # a typo never passes silently, even where the layer is unused
        with pytest.raises(ValueError, match="Valid choices: block1_conv1"):
            cam(fashion_random, image, method, layer="block9_conv1")
    with pytest.raises(ValueError, match=r"outputs \(1, 10\); a CAM layer must output \(N, C, H, W\)"):
        cam(fashion_random, image, layer=fashion_random.module.classifier)
    dropout = fashion_random.module.classifier[1]
    with pytest.raises(ValueError, match="must output"):
        cam(fashion_random, image, layer=dropout)


def test_any_module_of_the_network_can_be_the_layer(resnet18):
    x = random_images("resnet18", 1)
    block = cam_result(resnet18, x[0], layer=resnet18.module.layer4, target=3)
    assert block.layers == ("layer4",) and block.map.shape == (96, 96)
    theirs, _ = captum_gradcam(resnet18.module, "layer4", x, 3)
    assert pearson(block.raw, theirs[0]) > 0.999
    # ... also by its module path, as one would type it
    by_path = cam_result(resnet18, x[0], layer="layer4", target=3)
    assert by_path.layers == ("layer4",) and torch.equal(by_path.raw, block.raw)
    with pytest.raises(ValueError, match="fc outputs .*must output"):
        cam(resnet18, x[0], layer="fc")
    with pytest.raises(ValueError, match="unknown layer 'layer9'.*any module path"):
        cam(resnet18, x[0], layer="layer9")


def test_cam_result_describes_the_explained_class(fashion_random):
    image = cw.sample_image("bag")
    result = cam_result(fashion_random, image, target="Bag")
    assert isinstance(result, CamResult) and result.method == "gradcam" and result.layers == ("block3_conv2",)
    assert (result.class_index, result.class_name) == (8, "Bag")
    probabilities = result.logits.softmax(0)
    assert result.probability == pytest.approx(float(probabilities[8]))
    assert result.score == pytest.approx(float(result.logits[8]))
    assert torch.equal(result.map, cam(fashion_random, image, target="Bag"))
    assert torch.equal(result.raw, cam(fashion_random, image, target="Bag", raw=True))
    assert result.map.min() >= 0 and result.raw.min() < 0
    assert [p.index for p in result.top] == probabilities.argsort(descending=True)[:5].tolist()
    assert result.attribution is None
    batch = cam_result(fashion_random, torch.randn(2, 1, 28, 28), "saliency", target=lambda z: z[:, 1] - z[:, 2])
    assert len(batch) == 2 and batch[0].class_index is None and batch[0].attribution.shape == (1, 28, 28)


def test_predict_gives_the_top_classes_with_names(fashion_random):
    image = cw.sample_image("coat")
    top = predict(fashion_random, image, k=3)
    with torch.no_grad():
        probabilities = fashion_random.module(fashion_random.preprocess(image))[0].softmax(0)
    assert [p.index for p in top] == probabilities.argsort(descending=True)[:3].tolist()
    assert [p.name for p in top] == [fashion_random.classes[p.index] for p in top]
    assert top[0].probability == pytest.approx(float(probabilities.max()))
    assert len(predict(fashion_random, image, k=50)) == 10
    with pytest.raises(ValueError, match="one image"):
        predict(fashion_random, torch.randn(2, 1, 28, 28))


def test_score_cam_and_smoothgrad_report_progress_and_can_be_cancelled(fashion_random):
    x = torch.randn(1, 1, 28, 28, generator=torch.Generator().manual_seed(7))
    seen = []
    plain = cam(fashion_random, x, "scorecam", layer="block2_conv1", target=1, batch_size=16)
    reported = cam(fashion_random, x, "scorecam", layer="block2_conv1", target=1, batch_size=16, progress=lambda d, t: seen.append((d, t)))
    assert torch.equal(plain, reported)
    assert seen == [(16 * (i + 1), 64) for i in range(4)]  # block2_conv1 has 64 channels
    seen.clear()
    cam(fashion_random, x, "smoothgrad", samples=10, batch_size=4, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(4, 10), (8, 10), (10, 10)]

    from cnn_widgets.engine import Cancelled

    before = snapshot(fashion_random.module)
    calls = []
    with pytest.raises(Cancelled):
        cam(fashion_random, x, "scorecam", layer="block2_conv1", batch_size=16, cancel=lambda: len(calls) >= 2, progress=lambda d, t: calls.append(d))
    assert calls == [16, 32]  # stopped right after the batch that saw the flag
    assert_unchanged(fashion_random.module, before)
    event = threading.Event()
    event.set()
    with pytest.raises(Cancelled):
        cam(fashion_random, x, "gradcam", cancel=event)  # checked before starting, too
