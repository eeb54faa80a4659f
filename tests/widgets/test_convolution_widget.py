"""ConvolutionExplainer from Python: the numbers it syncs are conv2d's, moving and
choosing kernels update them, and bad values read as errors naming the valid range."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import traitlets
from PIL import Image

import cnn_widgets as cw
from cnn_widgets.widgets.convolution import KERNEL_PRESETS, parse_kernel
from view_messages import send_from_view

pytestmark = pytest.mark.usefixtures("one_thread")


def conv2d_at(model, sample: str, filter: int, row: int, col: int) -> float:
    conv = model.layers[0].module
    inputs = model.preprocess(cw.sample_image(sample))
    return float(F.conv2d(inputs, conv.weight, conv.bias, padding=1)[0, filter, row, col])


def png_size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


@pytest.fixture
def widget(fashion):
    return cw.ConvolutionExplainer(fashion, "sneaker", filter=3, position=(14, 9))


def test_the_synced_step_is_conv2d_at_the_position(fashion, widget):
    step = widget.step
    assert (step["row"], step["col"]) == (14, 9) and widget.error == ""
    assert step["output"] == pytest.approx(conv2d_at(fashion, "sneaker", 3, 14, 9), abs=1e-5)
    (channel,) = step["channels"]
    products = np.array(channel["patch"]) * np.array(channel["kernel"])
    assert np.allclose(products, channel["products"], atol=1e-6)
    assert channel["sum"] + step["bias"] == pytest.approx(step["output"], abs=1e-5)
    assert step["relu"] == max(step["output"], 0.0)
    assert step["map_height"] == step["map_width"] == 28 and step["padding"] == [1, 1, 1, 1]
    assert step["source"] == "filter 3 of block1_conv1" and not step["custom"]
    assert "(pixel - mean) / std" in widget.units and "0.286" in widget.units
    assert widget.title == "fashion-cnn · filter 3 of block1_conv1 · sneaker"
    for trait in ("input_png", "output_png", "relu_png", "pooled_png", "colorbar_png"):
        assert getattr(widget, trait)[:4] == b"\x89PNG", trait
    assert png_size(widget.output_png) == (196, 196)  # 28 pixels, 7 screen pixels each


def test_moving_updates_numbers_and_pictures(fashion, widget):
    before = widget.output_png
    widget.move_to(0, 0)
    step = widget.step
    assert (step["row"], step["col"]) == (0, 0)
    assert step["output"] == pytest.approx(conv2d_at(fashion, "sneaker", 3, 0, 0), abs=1e-5)
    assert step["padding_mask"] == [[True, True, True], [True, False, False], [True, False, False]]
    assert step["channels"][0]["patch"][0] == [0.0, 0.0, 0.0]  # padding zeros in the patch
    assert widget.output_png != before  # fewer pixels computed now
    # The pooling window of the position: its other pixels are not computed yet.
    assert step["pool"]["row"] == 0 and step["pool"]["value"] is None
    assert step["pool"]["values"][0][0] == pytest.approx(max(step["output"], 0.0))
    assert step["pool"]["values"][1] == [None, None]
    widget.position = [1, 1]  # completes the first 2x2 window
    pool = widget.step["pool"]
    assert pool["value"] == pytest.approx(max(v for row in pool["values"] for v in row))
    assert widget.result.position == (1, 1)


def test_the_filter_and_a_custom_kernel_change_the_numbers(fashion, widget):
    widget.filter_index = 7
    assert widget.step["output"] == pytest.approx(conv2d_at(fashion, "sneaker", 7, 14, 9), abs=1e-5)
    assert widget.title.startswith("fashion-cnn · filter 7 of")
    widget.kernel = KERNEL_PRESETS["vertical edges"]
    step = widget.step
    inputs = fashion.preprocess(cw.sample_image("sneaker")).cpu()
    kernel = torch.tensor(KERNEL_PRESETS["vertical edges"], dtype=torch.float32).view(1, 1, 3, 3)
    assert step["custom"] and step["bias"] == 0.0 and step["source"] == "your kernel"
    assert step["output"] == pytest.approx(float(F.conv2d(inputs, kernel, padding=1)[0, 0, 14, 9]), abs=1e-5)
    assert "the same numbers on each channel" in widget.kernel_rule
    widget.kernel = []
    assert not widget.step["custom"]


def test_a_kernel_typed_in_the_view_is_used_and_a_bad_one_is_an_error_line(widget):
    send_from_view(widget, {"type": "kernel", "text": "1 2; 3 4"}, [])
    assert widget.kernel == [[1.0, 2.0], [3.0, 4.0]] and widget.error == ""
    assert widget.step["channels"][0]["kernel"] == [[1.0, 2.0], [3.0, 4.0]]
    send_from_view(widget, {"type": "kernel", "text": "1 2; x 4"}, [])
    assert "could not read the kernel" in widget.error
    assert widget.kernel == [[1.0, 2.0], [3.0, 4.0]]  # unchanged
    send_from_view(widget, {"type": "kernel", "text": "1 2; 3"}, [])
    assert "rows of equal length" in widget.error
    send_from_view(widget, {"type": "kernel", "text": ""}, [])
    assert widget.kernel == [] and widget.error == ""


def test_bad_values_from_python_name_the_valid_range(widget):
    with pytest.raises(traitlets.TraitError, match=r"filter index 32 is out of range .* \(valid: 0-31\)"):
        widget.filter_index = 32
    with pytest.raises(traitlets.TraitError, match=r"position \(3, 28\) is outside the output map: .*columns 0-27"):
        widget.move_to(3, 28)
    with pytest.raises(traitlets.TraitError, match="kernel must be a small 2-D list of numbers"):
        widget.kernel = [[1] * 9]
    with pytest.raises(traitlets.TraitError, match="shows the first conv layer, block1_conv1"):
        widget.layer = "block2_conv1"
    with pytest.raises(ValueError, match="filter index 40 is out of range"):
        cw.ConvolutionExplainer(cw.load_model("fashion-cnn"), "bag", filter=40)
    with pytest.raises(ValueError, match="position .* is outside the output map"):
        cw.ConvolutionExplainer(cw.load_model("fashion-cnn"), "bag", position=(28, 0))
    assert widget.position == [14, 9] and widget.filter_index == 3


def test_an_upload_that_is_not_a_picture_is_an_error_line_and_the_widget_keeps_working(widget):
    send_from_view(widget, {"type": "upload", "name": "notes.png"}, [b"not a picture"])
    assert "notes.png" in widget.error
    widget.sample = "trouser"
    assert widget.error == "" and widget.title.endswith("· trouser")


def test_a_custom_kernel_on_an_rgb_model_adds_up_three_channels():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(2))
    net(torch.zeros(1, 3, 32, 32))
    model = cw.load_model(net, input_size=(3, 32, 32), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    widget = cw.ConvolutionExplainer(model, "cat", position=(15, 15))
    assert widget.step["map_height"] == 16  # stride 2
    assert [c["name"] for c in widget.step["channels"]] == ["red", "green", "blue"]
    assert sum(c["sum"] for c in widget.step["channels"]) + widget.step["bias"] == pytest.approx(widget.step["output"], abs=1e-5)
    widget.kernel = [[1.0]]  # a 1x1 kernel keeps the 32x32 size: the position stays where it was
    assert widget.step["map_height"] == 32 and widget.position == [15, 15]
    widget.move_to(31, 31)
    widget.kernel = []  # back to the stride-2 filter: the position moves inside the smaller map
    assert widget.position == [15, 15] and widget.error == ""


def test_the_saved_picture_shows_the_maps_and_the_arithmetic(widget, tmp_path):
    picture = widget.picture()
    assert picture.shape[1] > 4 * 196 and picture.dtype == np.uint8
    # Under the three maps, their colour scale: a row running from dark blue through white to
    # dark red across the maps' width (not under the input), with a black mark at zero.
    from cnn_widgets.render.colormaps import colormap_lut

    lut = colormap_lut("diverging")
    blue, red = lut[0].astype(int), lut[-1].astype(int)
    near = lambda pixel, color: np.abs(pixel.astype(int) - color).sum() < 40
    rows = [y for y in range(picture.shape[0]) if near(picture[y, 250], blue) and near(picture[y, picture.shape[1] - 20], red)]
    assert rows, "no colour scale under the maps"
    bar = picture[rows[0]]
    assert not near(bar[200], blue)  # the input panel has no scale of its own
    middle = (250 + picture.shape[1] - 20) // 2
    assert (bar[middle - 30 : middle + 30].max(axis=1) < 60).any()  # zero marked in black near the middle
    path = tmp_path / "conv.png"
    widget.save_png(path)
    assert Image.open(path).size == (picture.shape[1], picture.shape[0])
    widget.playing = True  # the view's timer is moving it: the notebook's picture waits
    assert widget._picture_pending()


def test_parse_kernel_reads_rows_and_python_lists():
    assert parse_kernel("1, 2\n3, 4") == [[1.0, 2.0], [3.0, 4.0]]
    assert parse_kernel("[[1, 2], [3, 4]]") == [[1.0, 2.0], [3.0, 4.0]]
    with pytest.raises(ValueError, match="rows of numbers separated by ';'"):
        parse_kernel("edge")


def test_the_widget_leaves_the_users_model_unchanged(user_model):
    from model_state import assert_unchanged, snapshot

    model = cw.load_model(user_model, input_size=(3, 32, 32))
    model.layers
    before = snapshot(user_model)
    widget = cw.ConvolutionExplainer(model, "cat", filter=5, position=(3, 4))
    widget.move_to(31, 0)
    widget.kernel = [[0, 1], [1, 0]]
    widget.save_png("/dev/null")
    with pytest.raises(traitlets.TraitError):
        widget.filter_index = 8
    assert_unchanged(user_model, before)


def test_new_weights_give_new_numbers():
    """The maps are cached per image and kernel; training the model must not show stale numbers."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.Flatten(), torch.nn.LazyLinear(2))
    net(torch.zeros(1, 1, 8, 8))
    model = cw.load_model(net, input_size=(1, 8, 8))
    widget = cw.ConvolutionExplainer(model, "bag", position=(4, 4))
    before = widget.step["output"]
    with torch.no_grad():
        net[0].weight.mul_(2)  # what an optimizer step does: the same tensor, written in place
    widget.move_to(4, 3)
    widget.move_to(4, 4)
    assert widget.step["output"] == pytest.approx(2 * before - float(net[0].bias[0].detach()), abs=1e-5)
