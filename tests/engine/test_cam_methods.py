"""The heatmap methods as registered units, and what a layer name means.

Each method added as one file of ``cnn_widgets/engine/cam/methods`` has its oracle test
here or in test_cam.py (HiResCAM and XGradCAM: the pytorch-grad-cam parametrization there;
Eigen-CAM and Score-CAM: below). Issue 13's engine rules: a conv's name means the output of
the activation that follows it; ``NAME:raw`` the conv's own output; the reported name of the
default layer gives the default map back; the default is the last spatial stage's output;
a flat map says so; an image's map does not depend on its place in a batch.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from test_cam import GapNet, InplaceNet, fashion_random, pearson, peer_copy, resnet18, seeded, upsampled  # noqa: F401 (fixtures)
from torch import nn

import cnn_widgets as cw
from cnn_widgets import engine
from cnn_widgets.engine.cam import CAM_METHODS, METHODS, Cancelled, cam, cam_result, register
from cnn_widgets.engine.cam.core import Steps, captured
from cnn_widgets.models.fashion_cnn import WEIGHTS_FILE
from cnn_widgets.render import normalize

pytestmark = pytest.mark.usefixtures("one_thread")
FAST = dict(samples=4, batch_size=16)


@pytest.fixture(scope="module")
def shipped():
    if not WEIGHTS_FILE.exists():
        pytest.skip("the shipped fashion-cnn weights are not trained yet")
    return cw.load_model("fashion-cnn", device="cpu")


def fashion_test_images(model, count: int) -> torch.Tensor:
    from cnn_widgets.models.datasets import load_fashion_mnist

    try:
        images, _ = load_fashion_mnist("test")
    except FileNotFoundError as error:
        pytest.skip(str(error))
    return model.normalize(images[:count].float().div(255).unsqueeze(1))


# -- the registry --------------------------------------------------------------------------------


def test_every_method_is_registered_with_a_label_and_the_names_are_the_registry():
    assert CAM_METHODS == tuple(METHODS) and len(CAM_METHODS) >= 11
    assert CAM_METHODS[:4] == ("gradcam", "gradcam++", "layercam", "scorecam")  # menus start with the classics
    for name in ("hirescam", "xgradcam", "eigencam"):
        assert name in METHODS
    labels = [m.label for m in METHODS.values()]
    assert len(set(labels)) == len(labels) and all(labels)
    assert all(m.units for m in METHODS.values())  # every colorbar says what its numbers mean
    assert {name for name, m in METHODS.items() if not m.uses_layer} == {"saliency", "smoothgrad", "guided_backprop"}
    assert {name for name, m in METHODS.items() if not m.needs_gradients} == {"scorecam", "eigencam"}
    with pytest.raises(ValueError, match="already"):
        register(METHODS["gradcam"])


def test_a_new_method_is_one_registered_object(fashion_random):
    """What a new file in methods/ does: register a unit; the engine then takes its name."""
    from cnn_widgets.engine.cam.bases import GradientCam

    class Activations(GradientCam):
        name, label, order = "test_activation_sum", "Activation sum (test)", 999

        def combine(self, activation, grad):
            return activation.sum(dim=1)

    register(Activations())
    try:
        x = torch.randn(1, 1, 28, 28, generator=torch.Generator().manual_seed(1))
        result = cam_result(fashion_random, x, "test_activation_sum", layer="block2_conv1")[0]
        with torch.no_grad():
            expected = fashion_random.module.features[:7](x).sum(dim=1)  # block2_conv1 after its ReLU
        assert result.layers == ("block2_conv1",)
        torch.testing.assert_close(result.raw, upsampled(expected.unsqueeze(1), (28, 28))[0], rtol=1e-4, atol=1e-5)
    finally:
        del METHODS["test_activation_sum"]


@pytest.mark.parametrize("method", CAM_METHODS)
def test_each_method_runs_the_passes_it_says_it_costs(fashion_random, method, monkeypatch):
    """The registry's cost is what the method does: images through the network forward, and backward."""
    model, x = fashion_random, torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    model.layers  # the model finds its layers with one image, once, on first use: not the method's cost
    forward = []
    handle = model.module.register_forward_pre_hook(lambda _m, args: forward.append(args[0].shape[0]))
    backward, depth = [], []
    original = torch.autograd.grad

    def counting(outputs, inputs, *args, **kwargs):
        if not depth:  # guided backprop's function mode hands the call back once more
            first = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
            backward.append(first.shape[0])
        depth.append(1)
        try:
            return original(outputs, inputs, *args, **kwargs)
        finally:
            depth.pop()

    monkeypatch.setattr(torch.autograd, "grad", counting)
    try:
        cam(model, x, method, layer="block2_conv1", samples=5, batch_size=16)
    finally:
        handle.remove()
    channels = [model.layer("block2_conv1").out_channels] if METHODS[method].uses_layer else []
    cost = METHODS[method].passes(channels, 5)
    assert sum(forward) == 2 * cost.forward, forward
    assert sum(backward) == 2 * cost.backward, backward


# -- the new methods against pytorch-grad-cam ------------------------------------------------------


def test_eigencam_equals_pytorch_grad_cam(resnet18):
    from pytorch_grad_cam import EigenCAM
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection, get_2d_projection_with_sign_correction

    x = torch.randn(4, 3, 96, 96, generator=torch.Generator().manual_seed(3))
    twin = peer_copy(resnet18.module)
    agreeing = 0
    for layer in ("layer4", "layer3"):
        activations = []
        handle = twin.get_submodule(layer).register_forward_hook(lambda _m, _i, out: activations.append(out.detach().numpy()))
        with EigenCAM(model=twin, target_layers=[twin.get_submodule(layer)]) as peer:
            theirs = peer(input_tensor=x.clone(), targets=None)
        handle.remove()
        corrected = torch.from_numpy(get_2d_projection_with_sign_correction(activations[0]))
        signs = np.sign((get_2d_projection(activations[0]) * corrected.numpy()).sum(axis=(1, 2)))
        ours = cam_result(resnet18, x, "eigencam", layer=layer, target=[1, 2, 3, 4])
        for i in range(4):
            # The signed map is the sign-corrected first principal component (pytorch-grad-cam's helper) ...
            expected = upsampled(corrected[i][None, None], (96, 96))[0]
            torch.testing.assert_close(ours[i].raw, expected, rtol=1e-3, atol=1e-4 * float(expected.abs().max()))
            # ... and where EigenCAM's own (unfixed) SVD sign agrees, so is the shown map.
            if signs[i] > 0:
                assert pearson(normalize(ours[i].map.numpy()), theirs[i]) > 0.99
                agreeing += 1
        assert ours[0].map.max() > 0
    assert agreeing >= 1


def test_eigencam_is_the_same_for_every_class_and_needs_no_gradients(resnet18):
    x = torch.randn(1, 3, 96, 96, generator=torch.Generator().manual_seed(4))
    first = cam(resnet18, x, "eigencam", target=3)
    assert first.abs().max() > 0 and torch.equal(first, cam(resnet18, x, "eigencam", target=700))
    with torch.no_grad():
        assert torch.equal(first, cam(resnet18, x, "eigencam", target=3))


# -- Score-CAM as in its paper ----------------------------------------------------------------------


def test_score_cam_is_the_papers_softmax_over_channels_computed_by_hand():
    net = seeded(GapNet)
    model = cw.load_model(net, input_size=(3, 16, 16))
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        features = net.conv2(net.relu(net.conv1(x)))[0]
        baseline = net(torch.zeros_like(x))[0, 2]  # f^c(X_b), the paper's baseline (zeros)
        increases = []
        for channel in features:
            mask = F.interpolate(channel[None, None], size=(16, 16), mode="bilinear", align_corners=False)
            mask = (mask - mask.min()) / (mask.max() - mask.min())
            increases.append(net(x * mask)[0, 2] - baseline)  # S^c_k: the increase of the class logit
        alphas = torch.stack(increases).exp() / torch.stack(increases).exp().sum()  # softmax over the channels
        expected = torch.einsum("k,khw->hw", alphas, features)
    assert 0 < alphas.max() < 1
    ours = cam(model, x, "scorecam", layer="conv2", target=2, raw=True, batch_size=5)[0]
    torch.testing.assert_close(ours, upsampled(expected[None, None], (16, 16))[0], rtol=1e-4, atol=1e-6)


def score_cam_peer(module, layer: str, x, classes):
    from pytorch_grad_cam import ScoreCAM

    with ScoreCAM(model=module, target_layers=[module.get_submodule(layer)]) as peer:
        peer.batch_size = 32
        return peer(input_tensor=x.clone(), targets=[lambda out, c=c: out[c] for c in classes])


def test_score_cam_correlates_with_pytorch_grad_cam(shipped, resnet18, monkeypatch):
    """The same formula. The masks are upsampled with pixel centers aligned (as torchcam, the
    paper's code and every map here are), where pytorch-grad-cam aligns the corners: with its
    convention the maps are the same, so that convention is the only difference."""
    import sys

    x = fashion_test_images(shipped, 5)
    with torch.no_grad():
        top1 = shipped.module(x).argmax(1).tolist()
    cases = [(shipped, "block3_conv2", "features.13", x, top1),  # the default: block3_conv2 after its (in-place) ReLU
             (resnet18, "layer4", "layer4", torch.randn(1, 3, 80, 80, generator=torch.Generator().manual_seed(6)), [9])]
    theirs = [score_cam_peer(peer_copy(model.module), peer_layer, inputs, classes) for model, _, peer_layer, inputs, classes in cases]
    correlations = []
    for (model, layer, _, inputs, classes), peer in zip(cases, theirs):
        ours = cam(model, inputs, "scorecam", layer=layer, target=classes)
        for i in range(inputs.shape[0]):
            assert ours[i].max() > 0
            correlations.append(pearson(normalize(ours[i].numpy()), peer[i]))
    # Half a cell of shift in the masks moves maps of a 7x7 layer a little: r = 0.96-1.00 per map.
    assert np.median(correlations) >= 0.99 and min(correlations) >= 0.95, correlations

    class CornersAligned:
        def __getattr__(self, name):
            return getattr(F, name)

        @staticmethod
        def interpolate(tensor, size, mode, align_corners):
            return F.interpolate(tensor, size=size, mode=mode, align_corners=True)

    monkeypatch.setattr(sys.modules["cnn_widgets.engine.cam.methods.scorecam"], "F", CornersAligned())
    for (model, layer, _, inputs, classes), peer in zip(cases, theirs):
        ours = cam(model, inputs, "scorecam", layer=layer, target=classes)
        for i in range(inputs.shape[0]):
            assert pearson(normalize(ours[i].numpy()), peer[i]) > 0.9999


def test_score_cam_gives_no_blank_map_for_a_confident_image_of_the_shipped_model(shipped):
    x = fashion_test_images(shipped, 40)
    with torch.no_grad():
        confident = shipped.module(x).softmax(1).amax(1) > 0.9
    results = cam_result(shipped, x[confident][:16], "scorecam")
    assert len(results) == 16 and not any(r.flat for r in results)


# -- what a layer name means -----------------------------------------------------------------------


@pytest.mark.parametrize("activation", [nn.ReLU(inplace=True), nn.ReLU(), nn.LeakyReLU(0.3, inplace=True)], ids=["inplace", "relu", "leaky"])
def test_a_conv_name_means_the_output_of_the_activation_after_it(activation):
    net = seeded(InplaceNet, activation)
    model = cw.load_model(net, input_size=(3, 16, 16))
    assert model.layer("conv2").activation.path == "act2"
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(7))
    out_of_place = {nn.ReLU: F.relu, nn.LeakyReLU: lambda t: F.leaky_relu(t, 0.3)}[type(activation)]
    A = out_of_place(net.conv2(F.relu(net.conv1(x)))).detach().requires_grad_(True)  # what conv2 passes on
    logits = net.head(net.pool(A).flatten(1))
    (g,) = torch.autograd.grad(logits[:, 1].sum(), A)
    expected = (g.mean(dim=(2, 3), keepdim=True) * A).sum(1).detach()
    result = cam_result(model, x, layer="conv2", target=1)
    assert [r.layers for r in result] == [("conv2",), ("conv2",)]
    torch.testing.assert_close(torch.stack([r.raw for r in result]), expected, rtol=1e-5, atol=1e-7)
    raw = cam_result(model, x, layer="conv2:raw", target=1)
    assert raw[0].layers == ("conv2:raw",) and not torch.allclose(raw[0].raw, result[0].raw)


def test_the_activation_is_found_through_batchnorm_and_across_a_shared_relu():
    resnet = cw.load_model(torchvision.models.resnet50(weights=None).eval(), input_size=(3, 64, 64))
    conv1, conv2, conv3 = (resnet.layer(f"layer1.0.conv{i}") for i in (1, 2, 3))
    assert (conv1.activation.path, conv1.activation.call) == ("layer1.0.relu", 0)  # conv -> bn -> relu
    assert (conv2.activation.path, conv2.activation.call) == ("layer1.0.relu", 1)  # the same ReLU module, its second call
    assert conv3.activation is None  # bn3, then += identity before the ReLU: no activation follows conv3 alone
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(8))
    block = resnet.module.layer1[0]
    with torch.no_grad():
        stem = resnet.module.maxpool(resnet.module.relu(resnet.module.bn1(resnet.module.conv1(x))))
        after = F.relu(block.bn2(block.conv2(F.relu(block.bn1(block.conv1(stem))))))
    recorded = {}
    with cw.models.preserved(resnet.module, resnet.device), captured([resnet.layer_output("layer1.0.conv2")]) as tensors:
        resnet.module(x)
    recorded["conv2"] = tensors[0]
    torch.testing.assert_close(recorded["conv2"].detach(), after)


class FunctionalBlock(nn.Module):
    """conv -> BatchNorm -> F.relu in a hand-written forward, as GoogLeNet's BasicConv2d."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)), inplace=True)


class FunctionalNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block, self.head = FunctionalBlock(), nn.Linear(6, 4)

    def forward(self, x):
        return self.head(self.block(x).mean(dim=(2, 3)))


def test_an_activation_function_in_a_forward_is_read_at_the_module_that_returns_it():
    model = cw.load_model(seeded(FunctionalNet), input_size=(3, 12, 12))
    activation = model.layer("block.conv").activation
    assert (activation.path, activation.call, activation.kind) == ("block", 0, "ReLU")
    assert model.last_stage.name == "block.conv"
    x = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(11))
    named = cam(model, x, layer="block.conv", target=1, raw=True)
    assert torch.equal(named, cam(model, x, layer="block", target=1, raw=True))
    assert torch.equal(named, cam(model, x, target=1, raw=True))
    assert not torch.allclose(named, cam(model, x, layer="block.conv:raw", target=1, raw=True))


@pytest.mark.parametrize("name, stage", [("resnet18", "layer4"), ("mobilenet_v2", "features.18"), ("convnext_tiny", "features.7"),
                                         ("vgg16", "block5_conv3")])
def test_the_default_layer_is_the_last_spatial_stage_and_its_name_gives_it_back(name, stage):
    torch.manual_seed(0)
    module = getattr(torchvision.models, name)(weights=None).eval()
    model = cw.load_model(module, input_size=(3, 64, 64))
    assert model.last_stage.name == stage
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(9))
    default = cam_result(model, x, target=3)[0]
    assert default.layers == (stage,)
    assert torch.equal(cam_result(model, x, layer=stage, target=3)[0].raw, default.raw)


def test_the_reported_default_name_reproduces_the_map_on_the_shipped_model(shipped):
    x = fashion_test_images(shipped, 100)
    default = cam_result(shipped, x)
    assert {r.layers for r in default} == {("block3_conv2",)}
    again = cam(shipped, x, layer="block3_conv2")
    assert torch.equal(torch.stack([r.map for r in default]), again)
    assert sum(r.flat for r in default) == 0  # after the ReLU, as Grad-CAM was defined
    raw = cam_result(shipped, x, layer="block3_conv2:raw")
    flat = [r for r in raw if r.flat]
    assert len(flat) > 50  # the conv's own output before the ReLU: mostly blank, and each one says so
    assert all("zero everywhere" in r.warning and "block3_conv2:raw" in r.warning for r in flat)
    assert all(r.warning is None for r in raw if not r.flat)


def test_no_method_gives_a_blank_map_for_a_confident_image_of_the_shipped_model(shipped):
    x = fashion_test_images(shipped, 200)
    with torch.no_grad():
        confident = x[shipped.module(x).softmax(1).amax(1) > 0.9]
    assert len(confident) > 100
    for method in CAM_METHODS:
        images = confident if method not in ("scorecam", "smoothgrad") else confident[:8]  # the slow ones: fewer
        flat = [r for r in cam_result(shipped, images, method) if r.flat]
        assert flat == [], method


def test_bad_layer_names_name_the_rule():
    model = cw.load_model("fashion-cnn", weights=None)
    with pytest.raises(ValueError, match="did you mean 'block3_conv2'.*':raw' means its output before its activation"):
        cam(model, torch.zeros(1, 1, 28, 28), layer="block3_conv3")
    with pytest.raises(ValueError, match="unknown layer 'block9_conv1'"):
        cam(model, torch.zeros(1, 1, 28, 28), layer="block9_conv1:raw")


# -- batches, Stop -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", CAM_METHODS)
def test_an_image_gets_the_same_map_wherever_it_sits_in_a_batch(shipped, method):
    batch = fashion_test_images(shipped, 6)
    alone = cam(shipped, batch[5:], method, **FAST)[0]
    assert alone.abs().max() > 0
    in_batch = cam(shipped, batch, method, **FAST)[5]
    torch.testing.assert_close(in_batch, alone, rtol=1e-4, atol=1e-5 * float(alone.abs().max()))


def test_stop_is_seen_inside_a_batch_of_masked_passes(fashion_random, monkeypatch):
    """Score-CAM checks the flag between every batch and, during a batch, at the network's
    operations, so Stop does not wait for a batch of many passes to finish."""
    monkeypatch.setattr(Steps, "interval", 0.0)  # check at every operation, for a test that cannot race
    stop, reached = threading.Event(), []
    module = fashion_random.module

    def press_stop_during_the_second_batch(_m, _inputs, _output):
        reached.append("block1_conv1")
        if reached.count("block1_conv1") == 3:  # the first pass records the layer, then one per batch of masked passes
            stop.set()

    handles = [module.features[0].register_forward_hook(press_stop_during_the_second_batch),
               module.features[12].register_forward_hook(lambda *_: reached.append("block3_conv2"))]
    progress = []
    try:
        with pytest.raises(Cancelled):
            cam(fashion_random, torch.randn(1, 1, 28, 28), "scorecam", layer="block2_conv1", batch_size=16,
                cancel=stop, progress=lambda done, total: progress.append(done))
    finally:
        for handle in handles:
            handle.remove()
    assert progress == [16]  # the second batch of 16 passes never finished ...
    assert reached == ["block1_conv1", "block3_conv2", "block1_conv1", "block3_conv2", "block1_conv1"]  # ... nor reached the last conv
