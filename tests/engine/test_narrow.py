"""The CPU's narrow convolutions (engine/optvis/narrow.py) give the convolution's values and
gradients, for every kernel geometry a conv layer can have."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from cnn_widgets.engine.optvis import narrow
from cnn_widgets.engine.optvis.forward import selected_channels

GEOMETRIES = [  # kernel, stride, padding, dilation
    (3, 1, 1, 1), (3, 2, 1, 1), (5, 1, 2, 2), (3, 1, "same", 1), (4, 1, "same", 1),
    (1, 1, 0, 1), (3, 2, 0, 1), (7, 2, 3, 1), ((3, 5), (2, 1), (0, 2), (1, 2)),
]


def channels_last(tensor: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(tensor, memory_format=torch.channels_last).copy_(tensor)


@pytest.mark.parametrize("kernel, stride, padding, dilation", GEOMETRIES)
def test_selected_channels_equal_the_conv_in_values_and_gradients(kernel, stride, padding, dilation):
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 5, kernel, stride=stride, padding=padding, dilation=dilation).double().requires_grad_(False)
    index = torch.tensor([4, 0, 2])
    inputs = channels_last(torch.randn(3, 6, 13, 11, dtype=torch.float64)).requires_grad_()
    theirs = conv(inputs)[torch.arange(3), index]
    mine = narrow.selected_channels(inputs, conv.weight[index], conv.bias[index], narrow.zero_padding(conv), conv.stride, conv.dilation)
    assert mine.shape == theirs.shape
    torch.testing.assert_close(mine, theirs)
    upstream = torch.randn_like(theirs)
    (their_gradient,) = torch.autograd.grad(theirs, inputs, upstream)
    (my_gradient,) = torch.autograd.grad(mine, inputs, upstream)
    torch.testing.assert_close(my_gradient, their_gradient)
    assert my_gradient.is_contiguous(memory_format=torch.channels_last), "the gradient keeps the input's layout"


@pytest.mark.parametrize("kernel, stride, padding, dilation", GEOMETRIES)
def test_the_first_convs_input_gradient_equals_onednns(kernel, stride, padding, dilation, monkeypatch):
    monkeypatch.setattr(narrow, "INPUT_GRADIENT_MIN_ELEMENTS", 0)  # small inputs take the narrow path too
    torch.manual_seed(1)
    conv = nn.Conv2d(3, 8, kernel, stride=stride, padding=padding, dilation=dilation).double().requires_grad_(False)
    inputs = channels_last(torch.randn(2, 3, 17, 14, dtype=torch.float64)).requires_grad_()
    output = conv(inputs)
    upstream = torch.randn_like(output)
    (theirs,) = torch.autograd.grad(output, inputs, upstream)
    replaced = narrow.input_gradient(conv, inputs, conv(inputs))
    assert "InputGradient" in type(replaced.grad_fn).__name__, "the narrow path was taken"
    torch.testing.assert_close(replaced, output)
    (mine,) = torch.autograd.grad(replaced, inputs, upstream)
    torch.testing.assert_close(mine, theirs)


def test_selected_channels_of_big_and_small_inputs_both_equal_the_conv():
    torch.manual_seed(2)
    conv = nn.Conv2d(16, 4, 3, padding=1, padding_mode="reflect").requires_grad_(False)
    index = torch.tensor([3, 1, 0, 3])
    for side in (36, 8):  # the narrow path, and one direct conv per image
        inputs = channels_last(torch.randn(4, 16, side, side))
        assert (inputs.numel() >= narrow.SELECTED_MIN_ELEMENTS) == (side == 36)
        torch.testing.assert_close(selected_channels(conv, inputs, index), conv(inputs)[torch.arange(4), index], atol=1e-5, rtol=1e-5)
