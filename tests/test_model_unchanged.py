"""The guarantee every feature keeps: after any call of the library, including
one that raises, the user's model has the same parameters, buffers,
requires_grad flags (and the very same weight tensors, strides included), .grad
values, train/eval mode, hooks and device."""
from __future__ import annotations

import pytest
import torch

import cnn_widgets as cw
from cnn_widgets import engine
from cnn_widgets.atlas import atlas

from model_state import HOOK_DICTS, assert_unchanged, make_user_model, snapshot

IMAGE = torch.rand(32, 32, 3).numpy()


def _model(net):
    return cw.load_model(net, input_size=(3, 32, 32), classes=["a", "b", "c", "d"])


def _atlas(net):
    import tempfile
    from pathlib import Path

    from PIL import Image

    folder = Path(tempfile.mkdtemp())
    for i in range(6):
        Image.fromarray((torch.rand(32, 32, 3) * 255).byte().numpy()).save(folder / f"{i}.png")
    atlas(_model(net), folder, folder / "atlas", k=2, workers=1, progress=False)


CALLS = {
    "load_model and layers": lambda net: _model(net).layers,
    "filter_weights": lambda net: engine.filter_weights(_model(net), "block2_conv1"),
    "feature_maps": lambda net: engine.feature_maps(_model(net), IMAGE, cache=False),
    "feature_maps on a bare module": lambda net: engine.feature_maps(net, torch.randn(1, 3, 32, 32), cache=False),
    "FeatureMaps widget": lambda net: cw.FeatureMaps(_model(net), IMAGE, layer="block2_conv1").save_png("/dev/null"),
    "FilterWeights widget": lambda net: cw.FilterWeights(_model(net), layer="block1_conv1"),
    "dataset_examples (channels_last weights while it runs)": lambda net: engine.dataset_examples(_model(net), torch.rand(20, 3, 32, 32), k=3, cache=False),
    "atlas (receptive-field probe on a copy, crops, store)": _atlas,
    "cam (Grad-CAM)": lambda net: engine.cam(_model(net), IMAGE, "gradcam", layer="block2_conv1"),
    "cam (guided Grad-CAM: guided ReLUs while it runs)": lambda net: engine.cam(_model(net), IMAGE, "guided_gradcam"),
    "cam (Score-CAM, batched)": lambda net: engine.cam(_model(net), IMAGE, "scorecam"),
    "maximize": lambda net: engine.maximize(_model(net), "block2_conv1", [0, 1], steps=2, size=32),
    "dream": lambda net: engine.dream(_model(net), IMAGE, "block2_conv1", octaves=1, steps=2),
    "GradCAM widget": lambda net: cw.GradCAM(_model(net), IMAGE, layer="block2_conv1").save_png("/dev/null"),
    "DeepDream widget": lambda net: cw.DeepDream(_model(net), IMAGE, layer="block2_conv1", steps=1, frames=1, octaves=1).run(wait=True),
    "ActivationMaximization widget": lambda net: cw.ActivationMaximization(_model(net), layer="block1_conv1", filters="0-1", steps=2).run(wait=True),
}

FAILING_CALLS = {
    "unknown layer": (lambda net: engine.feature_maps(_model(net), IMAGE, layers="block9_conv1"), ValueError),
    "filter out of range": (lambda net: _model(net).filters("block1_conv1", [8]), ValueError),
    "bad image": (lambda net: engine.feature_maps(_model(net), b"not an image"), ValueError),
    "wrong input size": (lambda net: cw.load_model(net, input_size=(1, 32, 32)).layers, ValueError),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_model_is_unchanged_after(name):
    net = make_user_model()
    before = snapshot(net)
    CALLS[name](net)
    assert_unchanged(net, before)


@pytest.mark.parametrize("name", sorted(FAILING_CALLS))
def test_model_is_unchanged_after_a_call_that_raises(name):
    net = make_user_model()
    before = snapshot(net)
    call, error = FAILING_CALLS[name]
    with pytest.raises(error):
        call(net)
    assert_unchanged(net, before)


def test_model_is_unchanged_when_the_forward_pass_itself_fails():
    net = make_user_model()

    def explode(module, inputs, output):
        raise RuntimeError("failure inside the user's network")

    handle = net.features[1].register_forward_hook(explode)
    before = snapshot(net)
    with pytest.raises(ValueError, match="dry run"):
        _model(net).layers
    with pytest.raises(RuntimeError, match="failure inside"):
        model = cw.Model(net, name="tiny", input_size=(3, 32, 32), mean=(0,), std=(1,), classes=None,
                         device=torch.device("cpu"), weights="user")
        model._layers = cw.models.layers.discover_layers(net)
        engine.feature_maps(model, IMAGE, cache=False)
    assert_unchanged(net, before)
    handle.remove()


def test_training_mode_and_batchnorm_statistics_survive():
    net = make_user_model()
    running_mean = net.features[1].running_mean.clone()
    engine.feature_maps(_model(net), IMAGE, cache=False)
    assert net.training and net.features[1].training
    assert torch.equal(net.features[1].running_mean, running_mean)
    assert net.features[1].num_batches_tracked.item() == 0


def test_the_users_own_hooks_still_fire_and_no_new_ones_stay():
    net = make_user_model()
    engine.feature_maps(_model(net), IMAGE, cache=False)
    calls = len(net.calls)
    net(torch.randn(1, 3, 32, 32))
    assert len(net.calls) == calls + 1


def test_calls_from_several_threads_leave_the_model_unchanged():
    import threading

    net = make_user_model()
    model = _model(net)
    model.layers
    before = snapshot(net)
    errors = []

    def work(seed):
        try:
            for _ in range(5):
                engine.feature_maps(model, torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(seed)), cache=False)
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert_unchanged(net, before)


HOOKS = {
    "forward": lambda m: m.register_forward_hook(lambda *a: None),
    "forward with kwargs": lambda m: m.register_forward_hook(lambda *a: None, with_kwargs=True),
    "forward, always called": lambda m: m.register_forward_hook(lambda *a: None, always_call=True),
    "forward pre": lambda m: m.register_forward_pre_hook(lambda *a: None),
    "forward pre with kwargs": lambda m: m.register_forward_pre_hook(lambda *a: None, with_kwargs=True),
    "full backward": lambda m: m.register_full_backward_hook(lambda *a: None),
    "full backward pre": lambda m: m.register_full_backward_pre_hook(lambda *a: None),
    "state_dict": lambda m: m._register_state_dict_hook(lambda *a: None),
    "load_state_dict post": lambda m: m.register_load_state_dict_post_hook(lambda *a: None),
}


@pytest.mark.parametrize("kind", sorted(HOOKS))
def test_the_snapshot_sees_every_kind_of_hook_left_behind(kind):
    """The check can fail: any hook left on the model, of any kind preserved() restores, is caught."""
    assert len(HOOK_DICTS) >= 7, "the 7 dictionaries preserved() restores, at least"
    net = make_user_model()
    before = snapshot(net)
    HOOKS[kind](net.features[2])
    with pytest.raises(AssertionError, match="hooks changed"):
        assert_unchanged(net, before)
