"""convolution_at: the numbers one filter computes at one position are the model's own."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnn_widgets as cw
from cnn_widgets import engine
from model_state import assert_unchanged, snapshot

pytestmark = pytest.mark.usefixtures("one_thread")


def strided_model() -> cw.Model:
    """A random conv with stride 2, padding 1 and 3 input channels, in front of a small head."""
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.LazyLinear(2))
    net(torch.zeros(1, 3, 11, 9))
    return cw.load_model(net, input_size=(3, 11, 9))


def check_every_position(model: cw.Model, image, filter: int, expected: torch.Tensor) -> int:
    """Assert the step's numbers at every output position; returns how many were checked."""
    height, width = expected.shape
    for row in range(height):
        for col in range(width):
            step = engine.convolution_at(model, image, filter=filter, position=(row, col))
            assert step.output == pytest.approx(float(expected[row, col]), abs=1e-5)
            # The shown arithmetic adds up to the shown output.
            assert torch.allclose(step.products, step.patch * step.kernel)
            assert float(step.channel_sums.sum()) + step.bias == pytest.approx(step.output, abs=1e-5)
            assert torch.allclose(step.output_map, expected, atol=1e-5)
    return height * width


def test_random_conv_with_stride_2_and_padding_1_equals_conv2d_at_every_position():
    model = strided_model()
    conv = model.module[0]
    torch.manual_seed(2)
    image = torch.randn(1, 3, 11, 9)
    expected = F.conv2d(image, conv.weight, conv.bias, stride=2, padding=1)[0, 3].detach()
    assert expected.shape == (6, 5)
    assert check_every_position(model, image, 3, expected) == 30
    step = engine.convolution_at(model, image, filter=3, position=(1, 2))
    # Stride 2: output (1, 2) reads the input from row 1 and column 3 on (2 * 1 - 1, 2 * 2 - 1).
    assert step.window == (1, 3) and step.stride == (2, 2) and step.padding == (1, 1, 1, 1)
    assert torch.equal(step.patch, image[0, :, 1:4, 3:6])
    assert not step.padding_mask.any()
    assert step.channel_sums.shape == (3,)
    corner = engine.convolution_at(model, image, filter=3, position=(0, 0))
    assert corner.window == (-1, -1)
    assert corner.padding_mask.tolist() == [[True, True, True], [True, False, False], [True, False, False]]
    assert torch.all(corner.patch[:, 0, :] == 0) and torch.all(corner.patch[:, :, 0] == 0)  # padding zeros
    assert torch.equal(corner.patch[:, 1:, 1:], image[0, :, :2, :2])


def test_the_shipped_models_first_layer_gives_its_own_feature_map(fashion):
    image = cw.sample_image("sneaker")
    inputs = fashion.preprocess(image)
    conv = fashion.layers[0].module
    expected = F.conv2d(inputs, conv.weight, conv.bias, padding=1)[0, 5].cpu()
    assert check_every_position(fashion, inputs, 5, expected) == 28 * 28
    step = engine.convolution_at(fashion, image, filter=5, position=(10, 12))
    # The model's own feature map (the forward pass of the network, before its ReLU).
    assert torch.allclose(step.output_map, engine.feature_maps(fashion, image, "block1_conv1", stage="conv")["block1_conv1"][5], atol=1e-5)
    # The input is the normalized image: (pixel - mean) / std.
    assert torch.allclose(step.inputs, inputs[0].cpu())
    assert step.inputs.min() == pytest.approx((0 - fashion.mean[0]) / fashion.std[0], abs=1e-4)


def test_relu_and_pooling_follow_the_output_map(fashion):
    step = engine.convolution_at(fashion, cw.sample_image("bag"), filter=0, position=(7, 3))
    assert torch.equal(step.relu_map, step.output_map.clamp(min=0))
    assert step.relu_output == max(step.output, 0.0)
    assert step.pooled_map.shape == (14, 14)
    assert step.pool_position == (3, 1)
    window = step.relu_map[6:8, 2:4]
    assert float(step.pooled_map[3, 1]) == float(window.max())
    odd = engine.convolution_at(fashion, cw.sample_image("bag"), filter=0, position=(27, 27), pool=3)
    assert odd.pooled_map.shape == (9, 9) and odd.pool_position is None  # row 27 is left out by 3x3 pooling


def test_a_custom_kernel_is_the_same_kernel_on_every_channel_with_bias_0():
    model = strided_model()
    torch.manual_seed(3)
    image = torch.randn(1, 3, 11, 9)
    kernel = [[0, -1, 0], [-1, 4, -1], [0, -1, 0]]
    weight = torch.tensor(kernel, dtype=torch.float32).expand(1, 3, 3, 3)
    expected = F.conv2d(image, weight, padding="same")[0, 0]
    for row, col in [(0, 0), (5, 4), (10, 8), (3, 0)]:
        step = engine.convolution_at(model, image, kernel=kernel, position=(row, col))
        assert step.output == pytest.approx(float(expected[row, col]), abs=1e-5)
        assert step.bias == 0.0 and step.filter is None and step.stride == (1, 1)
        assert step.kernel.shape == (3, 3, 3) and all(torch.equal(k, torch.tensor(kernel, dtype=torch.float32)) for k in step.kernel)
    assert step.output_map.shape == (11, 9)  # zero padding keeps the input's size
    # An even kernel keeps the size too, with the extra zeros at the bottom and right, as conv2d's 'same'.
    even = [[1, 2], [3, 4]]
    expected = F.conv2d(image, torch.tensor(even, dtype=torch.float32).expand(1, 3, 2, 2), padding="same")[0, 0]
    step = engine.convolution_at(model, image, kernel=even, position=(10, 8))
    assert step.output_map.shape == (11, 9) and step.output == pytest.approx(float(expected[10, 8]), abs=1e-5)
    assert step.padding == (0, 1, 0, 1)
    assert engine.convolution_at(model, image, kernel=torch.ones(1, 5), position=(0, 0)).kernel.shape == (3, 1, 5)


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        ({"filter": 32}, ValueError, "filter index 32 is out of range for layer block1_conv1, which has 32 filters (valid: 0-31)"),
        ({"filter": -1}, ValueError, "valid: 0-31"),
        ({"filter": 1.5}, TypeError, "filter must be an int"),
        ({"position": (28, 0)}, ValueError, "position (28, 0) is outside the output map: the output map is 28x28 (rows 0-27, columns 0-27)"),
        ({"position": (0, -1)}, ValueError, "rows 0-27, columns 0-27"),
        ({"position": 5}, TypeError, "position must be (row, column)"),
        ({"position": (1.5, 2)}, TypeError, "position must be two whole numbers"),
        ({"kernel": [[1, 2], [3]]}, ValueError, "rows of equal length"),
        ({"kernel": [1, 2, 3]}, ValueError, "each row must itself be a list"),
        ({"kernel": [["a", 1]]}, ValueError, "kernel must be a small 2-D list of numbers"),
        ({"kernel": [[1] * 8] * 8}, ValueError, "1 to 7 rows and columns"),
        ({"kernel": []}, ValueError, "kernel must be a small 2-D list of numbers"),
        ({"kernel": "edge"}, ValueError, "such as [[0, -1, 0], [-1, 4, -1], [0, -1, 0]]"),
        ({"kernel": [[float("nan")]]}, ValueError, "not a finite number"),
        ({"kernel": torch.ones(2, 2, 2)}, ValueError, "shape (2, 2, 2)"),
        ({"layer": "block9_conv1"}, ValueError, "Valid choices: block1_conv1"),
        ({"pool": 0}, ValueError, "pool must be a whole number of pixels, 1 or more"),
    ],
)
def test_bad_input_names_the_parameter_and_the_valid_range(fashion, arguments, error, message):
    with pytest.raises(error) as raised:
        engine.convolution_at(fashion, cw.sample_image("bag"), **arguments)
    assert message in str(raised.value)


def test_the_users_model_comes_back_unchanged(user_model):
    model = cw.load_model(user_model, input_size=(3, 16, 16))
    model.layers  # the dry run that finds the layers runs the whole network once
    user_model.calls.clear()
    before = snapshot(user_model)
    image = torch.randn(1, 3, 16, 16)
    step = engine.convolution_at(model, image, filter=2, position=(4, 5))
    conv = user_model.features[0]
    assert step.output == pytest.approx(float(F.conv2d(image, conv.weight, conv.bias, padding=1)[0, 2, 4, 5].detach()), abs=1e-5)
    with pytest.raises(ValueError):
        engine.convolution_at(model, image, filter=99)
    assert_unchanged(user_model, before)
    assert user_model.calls == []  # the network stopped at its first conv: the user's hook further on never ran


def test_a_deeper_layer_reads_the_feature_maps_it_really_receives(fashion):
    image = cw.sample_image("coat")
    received = engine.layer_input(fashion, image, "block2_conv1")
    assert received.shape == (1, 32, 14, 14)
    assert torch.all(received >= 0)  # after ReLU and pooling
    conv = fashion.layer("block2_conv1").module
    step = engine.convolution_at(fashion, image, layer="block2_conv1", filter=7, position=(6, 13))
    expected = F.conv2d(received, conv.weight.cpu(), conv.bias.cpu(), padding=1)[0, 7, 6, 13]
    assert step.output == pytest.approx(float(expected), abs=1e-4)
    assert step.channel_sums.shape == (32,)


def test_grouped_and_dilated_convs_read_their_own_channels_and_taps():
    torch.manual_seed(4)
    conv = nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2, padding_mode="zeros")
    net = nn.Sequential(conv, nn.Flatten(), nn.LazyLinear(2))
    net(torch.zeros(1, 4, 8, 8))
    model = cw.load_model(net, input_size=(4, 8, 8))
    image = torch.randn(1, 4, 8, 8)
    expected = conv(image)[0].detach()
    step = engine.convolution_at(model, image, filter=4, position=(3, 5))  # filter 4 is in the second group
    assert step.channels == (2, 3)
    assert step.output == pytest.approx(float(expected[4, 3, 5]), abs=1e-5)
    assert torch.equal(step.patch, image[0, 2:4, 1:6:2, 3:8:2])  # taps two pixels apart


@pytest.mark.parametrize("padding_mode", ["reflect", "replicate", "circular"])
def test_other_padding_modes_pad_as_the_layer_does(padding_mode):
    torch.manual_seed(5)
    conv = nn.Conv2d(2, 3, 3, padding=1, padding_mode=padding_mode)
    net = nn.Sequential(conv, nn.Flatten(), nn.LazyLinear(2))
    net(torch.zeros(1, 2, 6, 7))
    model = cw.load_model(net, input_size=(2, 6, 7))
    image = torch.randn(1, 2, 6, 7)
    expected = conv(image)[0, 1].detach()
    corner = engine.convolution_at(model, image, filter=1, position=(0, 6))
    assert corner.padding_mode == padding_mode
    assert corner.output == pytest.approx(float(expected[0, 6]), abs=1e-5)
    assert corner.padding_mask[0].all() and corner.padding_mask[:, 2].all()
    assert torch.allclose(corner.output_map, expected, atol=1e-5)
