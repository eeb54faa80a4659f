"""Devices, user modules, layer resolution and the errors for bad choices."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import cnn_widgets as cw
from cnn_widgets.models import resolve_device


def test_device_is_chosen_automatically_and_can_be_overridden():
    assert resolve_device(None) == cw.best_device()
    assert resolve_device("cpu") == torch.device("cpu")
    assert cw.load_model("fashion-cnn", device="cpu").device == torch.device("cpu")
    with pytest.raises(ValueError, match="valid choices: auto, cuda, mps, cpu"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_user_module_is_wrapped_where_it_lives(user_model):
    model = cw.load_model(user_model, classes=["a", "b", "c", "d"])
    assert model.device == torch.device("cpu") and model.input_size == (3, 224, 224)
    assert [layer.path for layer in model.layers] == ["features.0", "features.4"]
    assert [layer.name for layer in model.layers] == ["block1_conv1", "block2_conv1"]
    assert model.layers[1].output_shape == (16, 112, 112)
    assert model.classes == ["a", "b", "c", "d"]
    assert model.module is user_model


def test_user_module_without_classes_gets_numbered_classes(user_model):
    assert cw.load_model(user_model, input_size=(3, 32, 32)).classes == ["class 0", "class 1", "class 2", "class 3"]


def test_nested_conv_layers_are_found():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 4, 3)
            self.branches = nn.ModuleList([nn.Sequential(nn.Conv2d(4, 2, 1)), nn.Sequential(nn.Sequential(nn.Conv2d(4, 2, 3, padding=1)))])

        def forward(self, x):
            x = self.stem(x)
            return torch.cat([branch(x) for branch in self.branches], 1)

    model = cw.load_model(Branchy(), input_size=(3, 10, 10))
    assert [layer.path for layer in model.layers] == ["stem", "branches.0.0", "branches.1.0.0"]
    assert model.layer("branches.1.0.0").output_shape == (2, 8, 8)


def test_a_model_without_conv_layers_says_so():
    with pytest.raises(ValueError, match="has no Conv2d layers"):
        cw.load_model(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))


def test_wrong_input_size_is_explained():
    with pytest.raises(ValueError, match="pass the right input_size"):
        cw.load_model("fashion-cnn", device="cpu", input_size=(1, 64, 64)).layers


def test_layer_errors_name_the_valid_choices(fashion):
    with pytest.raises(ValueError, match=r"unknown layer 'block1_conv'; did you mean .*'block1_conv1'.*Valid choices: block1_conv1, block1_conv2"):
        fashion.layer("block1_conv")
    with pytest.raises(ValueError, match="out of range; this model has 6 conv layers"):
        fashion.layer(6)
    assert fashion.layer(-1).name == "block3_conv2" and fashion.layer(None).name == "block3_conv2"
    assert fashion.layer("features.0").name == "block1_conv1"
    assert fashion.layer(fashion.module.features[0]).name == "block1_conv1"


def test_filter_errors_give_the_range(fashion):
    assert fashion.filters("block1_conv1", None) == list(range(32))
    assert fashion.filters("block1_conv1", range(3)) == [0, 1, 2]
    with pytest.raises(ValueError, match=r"filter index 32 is out of range for layer block1_conv1, which has 32 filters \(valid: 0-31\)"):
        fashion.filters("block1_conv1", [0, 32])


def test_model_summary_lists_every_layer(fashion):
    lines = fashion.summary().splitlines()
    assert len(lines) == 6 and lines[0].startswith("block1_conv1 (features.0): 1->32 channels, 3x3 kernel, output 28x28")


def test_preprocess_resizes_normalizes_and_accepts_tensors(fashion):
    inputs = fashion.preprocess(cw.sample_image("cat"))
    assert inputs.shape == (1, 1, 28, 28)
    white = fashion.preprocess(torch.ones(1, 28, 28).numpy().transpose(1, 2, 0))
    assert torch.allclose(white, torch.full_like(white, (1 - 0.2860) / 0.3530))
    tensor = torch.randn(1, 28, 40)
    assert torch.equal(fashion.preprocess(tensor)[0], tensor)
    with pytest.raises(ValueError, match=r"must be \(N, 1, H, W\)"):
        fashion.preprocess(torch.randn(3, 28, 28))
    assert torch.allclose(fashion.deprocess(fashion.normalize(torch.full((1, 1, 2, 2), 0.25))), torch.full((1, 1, 2, 2), 0.25))
