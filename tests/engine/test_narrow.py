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


@pytest.mark.parametrize("kernel, stride, padding, dilation", GEOMETRIES[:4])
def test_selected_channels_with_the_relu_fused_equal_relu_then_conv(kernel, stride, padding, dilation):
    torch.manual_seed(3)
    conv = nn.Conv2d(6, 5, kernel, stride=stride, padding=padding, dilation=dilation).double().requires_grad_(False)
    index = torch.tensor([4, 0, 2])
    image = channels_last(torch.randn(3, 6, 13, 11, dtype=torch.float64)).requires_grad_()
    theirs = conv(torch.relu(image * 1))[torch.arange(3), index]
    pre_relu = image * 1  # a non-leaf, as a conv's output is; the fused ReLU changes it in place
    mine = narrow.selected_channels(pre_relu, conv.weight[index], conv.bias[index], narrow.zero_padding(conv),
                                    conv.stride, conv.dilation, relu=True)
    torch.testing.assert_close(mine, theirs)
    torch.testing.assert_close(pre_relu, torch.relu(image), msg="the ReLU is applied in place, as nn.ReLU(inplace=True) does")
    upstream = torch.randn_like(theirs)
    (their_gradient,) = torch.autograd.grad(theirs, image, upstream)
    # The rectified input used further on too: its gradient joins the conv's before the mask.
    (my_gradient,) = torch.autograd.grad((mine * upstream).sum() + pre_relu.sum(), image)
    torch.testing.assert_close(my_gradient, their_gradient + (image > 0).double())


def _conv_relu_conv(inplace: bool = True, between: nn.Module | None = None) -> nn.Sequential:
    torch.manual_seed(4)
    layers = [nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(inplace=inplace)]
    layers += [between] if between is not None else []
    return nn.Sequential(*layers, nn.Conv2d(16, 8, 3, padding=1), nn.ReLU(inplace=True), nn.Flatten(), nn.LazyLinear(2))


@pytest.mark.parametrize("case", ["fused", "relu not in place", "pool between", "two layers read", "whole target layer"])
def test_a_cut_network_gives_the_plain_networks_values_and_gradients(case):
    """The cut before the ReLU that feeds the target conv (fused into it, from the second run on)
    gives what the whole network gives; where that ReLU does not feed the target conv, or is not
    in place, the network runs as before."""
    import cnn_widgets as cw
    from cnn_widgets.engine.optvis.forward import LayerTap

    net = _conv_relu_conv(inplace=case != "relu not in place", between=nn.MaxPool2d(1) if case == "pool between" else None)
    size = 48  # 16 channels x 48 x 48 x 2 images: above narrow.SELECTED_MIN_ELEMENTS, the fused path
    net(torch.zeros(1, 3, size, size))
    model = cw.load_model(net, input_size=(3, size, size))
    names = [info.name for info in model.layers]
    layers = [model.layer(name) for name in (names if case == "two layers read" else names[1:])]
    index = torch.tensor([5, 2])
    relu_calls = []
    net[1].register_forward_hook(lambda *_: relu_calls.append(1))  # after the ReLU ran
    images = torch.rand(2, 3, size, size)

    def plain():
        image = images.clone().requires_grad_()
        acts = {}
        def keep(path):
            def hook(_module, _inputs, output):
                acts[path] = output.clone()  # before the in-place ReLU that follows
            return hook

        hooks = [info.module.register_forward_hook(keep(info.path)) for info in layers]
        net(image)
        for hook in hooks:
            hook.remove()
        target = acts[layers[-1].path]
        value = target[:, 3].square().mean() if case == "whole target layer" else target[torch.arange(2), index].square().mean()
        value = value + sum(acts[info.path].mean() for info in layers[:-1])
        return value, torch.autograd.grad(value, image)[0]

    expected, expected_gradient = plain()
    with LayerTap(model, layers, cut=True, layout=torch.channels_last) as tap:
        for run in range(3):
            relu_calls.clear()
            image = images.clone().requires_grad_()
            recording = tap.run(image.contiguous(memory_format=torch.channels_last))
            if case == "whole target layer":  # the whole conv output, then one channel of it
                value = recording.activation(layers[-1].name)[:, 3].square().mean()
                assert recording.channels(layers[-1].name, index).shape == (2, size, size)
            else:
                value = recording.channels(layers[-1].name, index).square().mean()
            value = value + sum(recording.activation(info.name).mean() for info in layers[:-1])
            (gradient,) = torch.autograd.grad(value, image)
            torch.testing.assert_close(value, expected, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(gradient, expected_gradient, atol=1e-6, rtol=1e-4)
            fused = case in ("fused", "two layers read", "whole target layer") and run > 0
            assert len(relu_calls) == (0 if fused else 1), "from the second run on the network stops before the ReLU"
