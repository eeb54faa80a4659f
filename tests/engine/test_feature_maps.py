"""Filter weights and feature maps: shapes, one forward pass, in-place ReLU
safety, hooks removed, caching."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import cnn_widgets as cw
from cnn_widgets import engine


@pytest.fixture(autouse=True)
def fresh_cache():
    engine.clear_cache()
    yield
    engine.clear_cache()


@pytest.fixture(scope="module")
def vgg():
    torch.manual_seed(0)
    return cw.load_model("vgg11", weights=None, device="cpu")


def test_filter_weights_are_a_copy_with_the_kernel_shape(fashion):
    weights = engine.filter_weights(fashion, "block2_conv1")
    assert weights.shape == (64, 32, 3, 3)
    assert torch.equal(weights, fashion.module.features[5].weight)
    weights.zero_()
    assert fashion.module.features[5].weight.abs().sum() > 0


def test_feature_maps_of_every_layer_have_the_layer_shapes(vgg):
    maps = engine.feature_maps(vgg, torch.randn(1, 3, 64, 64))
    assert list(maps) == vgg.layer_names
    assert maps["block1_conv1"].shape == (64, 64, 64)
    assert maps["block5_conv2"].shape == (512, 4, 4)


def test_conv_stage_is_the_pre_relu_conv_output_despite_inplace_relu(vgg):
    # stage="conv" asks for the conv's own output (the default is what the layer passes on, after its ReLU).
    assert isinstance(vgg.module.features[1], nn.ReLU) and vgg.module.features[1].inplace
    inputs = torch.randn(1, 3, 32, 32)
    maps = engine.feature_maps(vgg, inputs, layers=["block1_conv1"], stage="conv")
    expected = vgg.module.features[0](inputs)[0]
    assert (maps["block1_conv1"] < 0).any(), "an in-place ReLU would have removed every negative value"
    assert torch.allclose(maps["block1_conv1"], expected, atol=1e-6)


def test_one_forward_pass_for_all_layers_and_none_for_a_cached_image(vgg):
    calls = []
    handle = vgg.module.register_forward_pre_hook(lambda m, i: calls.append(1))
    try:
        inputs = torch.randn(1, 3, 32, 32)
        first = engine.feature_maps(vgg, inputs)
        assert len(calls) == 1
        again = engine.feature_maps(vgg, inputs, layers=["block3_conv2", "block1_conv1"])
        assert len(calls) == 1, "a cached (model, image) must not run the network again"
        assert torch.equal(again["block3_conv2"], first["block3_conv2"])
        engine.feature_maps(vgg, torch.randn(1, 3, 32, 32))
        assert len(calls) == 2
    finally:
        handle.remove()


def test_forward_pass_stops_after_the_last_requested_layer(vgg):
    seen = []
    handles = [vgg.module.features[i].register_forward_hook(lambda m, i, o, n=i: seen.append(n)) for i in (0, 3, 18)]
    try:
        engine.feature_maps(vgg, torch.randn(1, 3, 32, 32), layers="block1_conv1", cache=False)
    finally:
        for handle in handles:
            handle.remove()
    assert seen == [0], "layers after the requested one must not be computed"


def test_retraining_the_model_invalidates_the_cache(fashion):
    model = cw.load_model("fashion-cnn", weights=None, device="cpu")
    image = cw.sample_image("bag")
    before = engine.feature_maps(model, image, layers="block1_conv1")["block1_conv1"].clone()
    with torch.no_grad():
        model.module.features[0].weight.mul_(2)
    after = engine.feature_maps(model, image, layers="block1_conv1")["block1_conv1"]
    assert not torch.allclose(before, after)


def test_hooks_are_removed_even_when_the_forward_pass_fails(user_model):
    model = cw.load_model(user_model, input_size=(3, 16, 16))
    model.layers  # dry run before the failure is planted
    hooks_before = len(user_model.features[0]._forward_hooks)

    def explode(module, inputs, output):
        raise RuntimeError("boom")

    handle = user_model.features[1].register_forward_hook(explode)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            engine.feature_maps(model, torch.randn(1, 3, 16, 16), cache=False)
    finally:
        handle.remove()
    assert len(user_model.features[0]._forward_hooks) == hooks_before


def test_channel_statistics_and_sorting():
    maps = torch.stack([torch.full((2, 2), 1.0), torch.tensor([[3.0, -1.0], [-1.0, -1.0]]), torch.zeros(2, 2)])
    stats = engine.channel_stats(maps)
    assert stats["mean"].tolist() == [1.0, 0.0, 0.0]
    assert stats["max"].tolist() == [1.0, 3.0, 0.0]
    assert stats["positive"].tolist() == [1.0, 0.25, 0.0]
    assert engine.sort_channels(maps, "max") == [1, 0, 2]
    assert engine.sort_channels(maps, "mean") == [0, 1, 2]
    with pytest.raises(ValueError, match="valid choices: mean, max, positive"):
        engine.sort_channels(maps, "median")


def test_feature_maps_reject_a_batch(fashion):
    with pytest.raises(ValueError, match="one image"):
        engine.feature_maps(fashion, torch.randn(2, 1, 28, 28))


def _activation_outputs(model, inputs):
    """{layer name: the output of the activation module that follows it}, recorded by plain
    hooks that clone (so an in-place activation later in the pass cannot change them)."""
    found, calls, handles = {}, {}, []
    by_module = {}
    for info in model.layers:
        if info.activation is not None:
            by_module.setdefault(info.activation.module, []).append(info)

    def hook(module, _inputs, output):
        call = calls.get(module, 0)
        calls[module] = call + 1
        for info in by_module[module]:
            if info.activation.call == call:
                found[info.name] = output[0].detach().clone()

    handles = [module.register_forward_hook(hook) for module in by_module]
    try:
        with torch.no_grad():
            model.module(inputs)
    finally:
        for handle in handles:
            handle.remove()
    return found


@pytest.mark.parametrize("name, kind", [("vgg16", "ReLU"), ("resnet18", "ReLU"), ("efficientnet_b0", "SiLU")])
def test_default_maps_are_the_activation_output_after_each_conv(name, kind):
    model = cw.load_model(name, weights=None, device="cpu", input_size=(3, 64, 64))
    inputs = torch.randn(1, 3, 64, 64)
    after = engine.feature_maps(model, inputs)
    before = engine.feature_maps(model, inputs, stage="conv")
    expected = _activation_outputs(model, inputs)
    assert len(expected) >= 8
    for layer, output in expected.items():
        assert torch.allclose(after[layer], output, atol=1e-5), layer
    first = model.layers[0]
    assert first.activation.kind == kind
    bn = next(m for m in model.module.modules() if isinstance(m, nn.BatchNorm2d)) if name != "vgg16" else nn.Identity()
    act = {"ReLU": torch.relu, "SiLU": nn.functional.silu}[kind]
    assert torch.allclose(after[first.name], act(bn(before[first.name][None]))[0], atol=1e-5), \
        "the first layer's map is its activation applied to its conv output"
    assert (before[first.name] < 0).any() and not torch.equal(before[first.name], after[first.name])
    if kind == "ReLU":
        assert all(after[layer].min() >= 0 for layer in expected)


def test_an_unknown_stage_names_the_valid_choices(fashion):
    with pytest.raises(ValueError, match="valid choices: activation, conv"):
        engine.feature_maps(fashion, cw.sample_image("bag"), stage="relu")
