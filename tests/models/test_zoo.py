"""The model zoo: every architecture loads offline, its conv layers are found
with the right shapes, Keras-style names point at the right modules, and
weights load from the cache or a local file."""
from __future__ import annotations

import hashlib
import time

import pytest
import torch

import cnn_widgets as cw
from cnn_widgets.models import zoo

# name -> (number of Conv2d layers, {layer: output shape at 224x224})
EXPECTED = {
    "vgg11": (8, {"block1_conv1": (64, 224, 224), "block5_conv2": (512, 14, 14)}),
    "vgg11_bn": (8, {"block3_conv2": (256, 56, 56)}),
    "vgg13": (10, {"block2_conv2": (128, 112, 112)}),
    "vgg13_bn": (10, {"block5_conv2": (512, 14, 14)}),
    "vgg16": (13, {"block1_conv1": (64, 224, 224), "block3_conv1": (256, 56, 56), "block5_conv3": (512, 14, 14)}),
    "vgg16_bn": (13, {"block4_conv3": (512, 28, 28)}),
    "vgg19": (16, {"block5_conv4": (512, 14, 14)}),
    "vgg19_bn": (16, {"block3_conv4": (256, 56, 56)}),
    "alexnet": (5, {"block1_conv1": (64, 55, 55), "block3_conv3": (256, 13, 13)}),
    "resnet18": (20, {"conv1": (64, 112, 112), "layer4.1.conv2": (512, 7, 7), "layer2.0.downsample.0": (128, 28, 28)}),
    "resnet34": (36, {"layer3.5.conv2": (256, 14, 14)}),
    "resnet50": (53, {"layer4.2.conv3": (2048, 7, 7)}),
    "googlenet": (57, {"conv1.conv": (64, 112, 112), "inception5b.branch4.1.conv": (128, 7, 7)}),
    "mobilenet_v2": (52, {"features.18.0": (1280, 7, 7)}),
    "mobilenet_v3_small": (52, {"features.12.0": (576, 7, 7)}),
    "efficientnet_b0": (81, {"features.8.0": (1280, 7, 7)}),
    "convnext_tiny": (22, {"features.0.0": (96, 56, 56), "features.7.2.block.0": (768, 7, 7)}),
}


def test_every_required_name_is_in_the_zoo():
    assert set(EXPECTED) <= set(cw.MODEL_NAMES)
    assert "fashion-cnn" in cw.MODEL_NAMES
    assert set(KERAS_PATHS) <= set(EXPECTED), "the Keras-style names are checked on the models loaded below"


KERAS_PATHS = {
    "vgg11": {"block1_conv1": "features.0", "block2_conv1": "features.3", "block3_conv2": "features.8", "block5_conv2": "features.18"},
    "vgg13": {"block1_conv2": "features.2", "block2_conv1": "features.5", "block5_conv2": "features.22"},
    "vgg16": {
        "block1_conv1": "features.0", "block1_conv2": "features.2", "block2_conv1": "features.5",
        "block3_conv1": "features.10", "block4_conv3": "features.21", "block5_conv3": "features.28",
    },
    "vgg19": {"block3_conv4": "features.16", "block4_conv1": "features.19", "block5_conv4": "features.34"},
    "vgg16_bn": {"block1_conv2": "features.3", "block2_conv1": "features.7"},
}


VGG16_NAMES = [f"block{b}_conv{c}" for b, n in enumerate((2, 2, 3, 3, 3), start=1) for c in range(1, n + 1)]


# One load per architecture (a VGG's random initialization and dry run cost seconds): the
# Keras-style names are checked on the same model.
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_zoo_model_loads_with_random_weights_and_lists_conv_layers(name):
    model = cw.load_model(name, weights=None, device="cpu")
    count, shapes = EXPECTED[name]
    assert len(model.layers) == count
    for layer in model.layers:
        assert layer.output_shape is not None and layer.output_shape[0] == layer.out_channels
        assert isinstance(layer.module, torch.nn.Conv2d)
        assert model.layer(layer.path) is layer and model.layer(layer.name) is layer
    for layer_name, shape in shapes.items():
        assert model.layer(layer_name).output_shape == shape
    assert len(model.classes) == 1000 and model.classes[0] == "tench"
    assert model.input_size == (3, 224, 224)
    assert model.mean == zoo.IMAGENET_MEAN and model.std == zoo.IMAGENET_STD
    assert model.weights == "none"
    # Keras-style names resolve to the right modules; VGG16's are complete.
    modules = dict(model.module.named_modules())
    for keras_name, path in KERAS_PATHS.get(name, {}).items():
        layer = model.layer(keras_name)
        assert layer.path == path and layer.module is modules[path]
        assert model.layer(path) is layer
    if name == "vgg16":
        assert model.layer_names == VGG16_NAMES


def test_state_dict_written_by_the_test_loads_through_weights_path(tmp_path):
    torch.manual_seed(1)
    source = cw.load_model("resnet18", weights=None, device="cpu").module
    path = tmp_path / "resnet18-mine.pth"
    torch.save(source.state_dict(), path)
    loaded = cw.load_model("resnet18", weights=str(path), device="cpu")
    for (name, theirs), mine in zip(source.state_dict().items(), loaded.module.state_dict().values()):
        assert torch.equal(theirs, mine), name
    assert loaded.weights == str(path)


def test_wrapped_checkpoint_dicts_load_too(tmp_path):
    source = cw.load_model("fashion-cnn", weights=None, device="cpu").module
    path = tmp_path / "checkpoint.pt"
    torch.save({"epoch": 3, "state_dict": source.state_dict()}, path)
    loaded = cw.load_model("fashion-cnn", weights=path, device="cpu")
    assert torch.equal(loaded.module.features[0].weight, source.features[0].weight)


def test_state_dict_of_another_architecture_is_refused_with_the_keys(tmp_path):
    path = tmp_path / "wrong.pth"
    torch.save(cw.load_model("fashion-cnn", weights=None, device="cpu").module.state_dict(), path)
    with pytest.raises(ValueError, match="do not fit this architecture.*missing keys: conv1.weight"):
        cw.load_model("resnet18", weights=path, device="cpu")


class Payload:
    """Stands for an arbitrary pickled object, which a weights file must never run."""


def test_a_pickled_object_is_not_loaded_as_weights(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"weights": Payload()}, path)
    with pytest.raises(ValueError, match="cannot be loaded safely|not a PyTorch state_dict"):
        cw.load_model("resnet18", weights=path, device="cpu")


def test_missing_imagenet_weights_fail_fast_and_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv("CNN_WIDGETS_OFFLINE", raising=False)
    # The download host is unreachable: a closed port on this machine stands in for a dead network.
    probe = zoo._reachable
    monkeypatch.setattr(zoo, "_reachable", lambda url, timeout: probe("https://127.0.0.1:9/", timeout))
    started = time.monotonic()
    with pytest.raises(cw.WeightsUnavailableError) as error:
        cw.load_model("vgg16", device="cpu")
    assert time.monotonic() - started < 30
    expected = tmp_path / "torch-home" / "hub" / "checkpoints" / "vgg16-397923af.pth"
    assert str(expected) in str(error.value)
    assert "https://download.pytorch.org/models/vgg16-397923af.pth" in str(error.value)


def test_offline_switch_never_touches_the_network(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("CNN_WIDGETS_OFFLINE", "1")
    monkeypatch.setattr(zoo.socket, "create_connection", lambda *a, **k: pytest.fail("network used"))
    with pytest.raises(cw.WeightsUnavailableError, match="resnet18-f37072fd.pth"):
        cw.load_model("resnet18", device="cpu")


def test_cached_imagenet_weights_load_without_network(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("CNN_WIDGETS_OFFLINE", "1")
    monkeypatch.setattr(zoo.socket, "create_connection", lambda *a, **k: pytest.fail("network used"))
    torch.manual_seed(2)
    reference = cw.load_model("resnet18", weights=None, device="cpu").module
    saved = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), saved)
    # A cached file must match the SHA-256 prefix in its name: publish this one under its own hash.
    weights = zoo._weights_enum("resnet18")
    monkeypatch.setattr(weights.value, "url", f"https://download.pytorch.org/models/resnet18-{hashlib.sha256(saved.read_bytes()).hexdigest()[:8]}.pth")
    cached = zoo.weights_cache_file("resnet18")
    cached.parent.mkdir(parents=True)
    saved.rename(cached)
    model = cw.load_model("resnet18", device="cpu")
    assert model.weights == "imagenet"
    assert torch.equal(model.module.fc.weight, reference.fc.weight)


def test_unknown_model_name_lists_choices_and_close_matches():
    with pytest.raises(ValueError, match=r"unknown model 'vgg61'; did you mean .*'vgg16'.*Valid choices: fashion-cnn, vgg11"):
        cw.load_model("vgg61")


def test_names_are_case_and_dash_insensitive():
    assert cw.load_model("Fashion_CNN", device="cpu").name == "fashion-cnn"


def test_bad_weights_choice_for_shipped_model():
    with pytest.raises(ValueError, match="fashion-cnn has no ImageNet weights"):
        cw.load_model("fashion-cnn", weights="imagenet")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cw.load_model("fashion-cnn", weights="/nonexistent/file.pth")


def test_random_weights_are_seeded_and_labelled_untrained():
    state = torch.random.get_rng_state()
    first = cw.load_model("resnet18", weights=None, device="cpu")
    assert torch.equal(torch.random.get_rng_state(), state), "loading leaves the caller's random state alone"
    second = cw.load_model("resnet18", weights=None, device="cpu")
    other = cw.load_model("resnet18", weights=None, device="cpu", seed=1)
    weights = lambda model: model.module.conv1.weight
    assert torch.equal(weights(first), weights(second))
    assert not torch.equal(weights(first), weights(other))
    assert not first.trained and first.weights_note == "untrained (random weights)"
    assert first.label == "resnet18 · untrained (random weights)"
    assert cw.load_model("fashion-cnn", device="cpu").trained
    with pytest.raises(TypeError, match="seed must be an integer"):
        cw.load_model("fashion-cnn", weights=None, seed="zero")


def test_the_command_line_says_a_model_is_untrained(capsys):
    from cnn_widgets.cli import main

    assert main(["layers", "fashion-cnn", "--weights", "none"]) == 0
    assert "fashion-cnn is untrained (random weights)" in capsys.readouterr().out
    assert main(["layers", "fashion-cnn"]) == 0
    assert "untrained" not in capsys.readouterr().out
