"""Bad or unusual input either works as a reader would expect or fails with an
error that names the parameter and the valid choices: filter texts mean what
they say, bools and fractions are not taken as indices, the engine makes its own
gradients inside torch.no_grad(), and misspelled widget options raise."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import cnn_widgets as cw
from cnn_widgets import engine


def test_a_filter_text_means_those_filters(fashion, one_thread):
    twelve = engine.maximize(fashion, "block1_conv1", "12", steps=2)
    assert twelve.shape[0] == 1
    assert torch.equal(twelve, engine.maximize(fashion, "block1_conv1", [12], steps=2))
    assert engine.maximize(fashion, "block1_conv1", "0-15", steps=1, size=16).shape[0] == 16
    assert fashion.filters("block1_conv1", np.int64(3)) == [3]


@pytest.mark.parametrize("bad", [True, 1.0, [0, 1.5], [False], np.float32(2)])
def test_bools_and_fractions_are_not_filter_indices(fashion, bad):
    with pytest.raises(TypeError, match="filters must be int indices"):
        fashion.filters("block1_conv1", bad)


def test_unreadable_filter_texts_say_how_to_write_them(fashion):
    for text in ("twelve", "5-2", "1-x"):
        with pytest.raises(ValueError, match=r"cannot read filters .*a range like '0-15'"):
            engine.maximize(fashion, "block1_conv1", text, steps=1)


def test_the_engine_makes_its_own_gradients_inside_no_grad(fashion, one_thread):
    with torch.no_grad():
        images = engine.maximize(fashion, "block1_conv1", [0], steps=2)
        frames = engine.dream(fashion, cw.sample_image("sneaker"), "block1_conv1", octaves=1, steps=1)
        assert not torch.is_grad_enabled()
    assert images.shape[0] == 1 and len(frames) == 1


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda m: cw.GradCAM(m, "sneaker", metod="scorecam"), r"GradCAM\(\) got an unexpected keyword argument 'metod'; did you mean 'method'"),
        (lambda m: cw.FeatureMaps(m, "sneaker", colourmap="gray"), r"unexpected keyword argument 'colourmap'; did you mean 'colormap'"),
        (lambda m: cw.ActivationMaximization(m, step=3), r"unexpected keyword argument 'step'; did you mean 'steps'"),
        (lambda m: cw.Explorer(m, "sneaker", dataset=None, layr=1), r"Explorer\(\) got an unexpected keyword argument 'layr'; did you mean 'layer'"),
    ],
)
def test_misspelled_widget_options_raise_with_close_matches(fashion, make, message):
    with pytest.raises(TypeError, match=message):
        make(fashion)


def test_bad_settings_say_which_parameter_and_leave_the_widget_as_it_was(fashion):
    maps = cw.FeatureMaps(fashion, "sneaker")
    with pytest.raises(Exception, match=r"unknown sort_by 'Mean'; did you mean 'mean'\? Valid choices: index, mean, max, positive"):
        maps.sort_by = "Mean"
    assert maps.sort_by == "index" and not maps.error
    with pytest.raises(ValueError, match=r"the image is empty \(0x0 pixels\)"):
        cw.DeepDream(fashion, np.zeros((0, 0), np.uint8))
    with pytest.raises(ValueError, match="smoothing must be a finite number >= 0"):
        engine.dream(fashion, cw.sample_image("sneaker"), "block1_conv1", smoothing=float("inf"))
    with pytest.raises(ValueError, match="the dataset is empty"):
        engine.dataset_examples(fashion, torch.zeros(0, 1, 28, 28))
    with pytest.raises(ValueError, match="batch_size must be a positive int, got -1"):
        engine.dataset_examples(fashion, torch.zeros(4, 1, 28, 28), batch_size=-1)


def test_one_layer_may_be_a_numpy_integer(fashion):
    assert list(engine.feature_maps(fashion, cw.sample_image("sneaker"), layers=np.int64(1))) == ["block1_conv2"]


def test_filter_weights_of_a_spectral_norm_conv_in_train_mode_leave_it_unchanged():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.utils.parametrizations.spectral_norm(torch.nn.Conv2d(3, 4, 3)), torch.nn.ReLU())
    net.train()
    before = {name: value.clone() for name, value in net.state_dict().items()}
    kernels = engine.filter_weights(net, 0)
    assert kernels.shape == (4, 3, 3, 3)
    after = net.state_dict()
    assert [name for name in before if not torch.equal(before[name], after[name])] == []
    assert net.training


class SharedConv(torch.nn.Module):
    """One conv applied twice: its weight is shared by the two uses (a tied weight)."""

    def __init__(self) -> None:
        super().__init__()
        self.first = torch.nn.Conv2d(4, 4, 3, padding=1)
        self.second = torch.nn.Conv2d(4, 4, 3, padding=1)
        self.second.weight = self.first.weight
        self.head = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))

    def forward(self, x):
        return self.head(self.second(torch.relu(self.first(x))))


def test_a_weight_shared_by_two_convs_keeps_its_layout_after_dataset_examples():
    torch.manual_seed(0)
    net = SharedConv()
    strides = net.first.weight.stride()
    engine.dataset_examples(cw.load_model(net, input_size=(4, 8, 8)), torch.rand(4, 4, 8, 8), k=2, cache=False)
    assert net.first.weight.stride() == strides and net.first.weight.is_contiguous()


class GrowingMemory(torch.nn.Module):
    """A model whose forward pass resizes one of its buffers (a running memory)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.register_buffer("memory", torch.zeros(2))
        self.head = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))

    def forward(self, x):
        self.memory.resize_(self.memory.numel() + 1)
        return self.head(self.conv(x))


def test_a_buffer_resized_by_the_forward_pass_comes_back_with_the_rest_of_the_model():
    net = GrowingMemory().train()
    maps = engine.feature_maps(cw.load_model(net, input_size=(1, 8, 8)), torch.rand(1, 1, 8, 8))
    assert maps["conv"].shape == (4, 6, 6)
    assert net.memory.shape == (2,) and torch.equal(net.memory, torch.zeros(2))
    assert net.training and net.conv.training


def test_a_qat_prepared_model_comes_back_with_its_observers_unchanged():
    import warnings

    import torch.ao.quantization as quantization

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        quantization.QuantStub(), torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(4, 2), quantization.DeQuantStub(),
    )
    net.qconfig = quantization.get_default_qat_qconfig("fbgemm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantization.prepare_qat(net.train(), inplace=True)
    net(torch.rand(2, 3, 16, 16))  # the observers have seen something
    before = {name: value.clone() for name, value in net.state_dict().items()}
    model = cw.load_model(net, input_size=(3, 16, 16))
    engine.feature_maps(model, torch.rand(1, 3, 16, 16) * 5)
    engine.filter_weights(model, 0)
    after = net.state_dict()
    assert [name for name in before if not torch.equal(before[name], after[name])] == []
