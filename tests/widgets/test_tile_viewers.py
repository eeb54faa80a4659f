"""FilterWeights and FeatureMaps from Python: traits in sync, errors shown in
the widget, caching, and saving what is shown."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import traitlets
from PIL import Image

import cnn_widgets as cw
from cnn_widgets import render
from picture_search import position_of
from view_messages import send_from_view


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


@pytest.fixture
def maps_widget(fashion):
    return cw.FeatureMaps(fashion, "sneaker", layer="block1_conv1")


def test_feature_maps_grid_has_one_tile_per_filter(maps_widget):
    layout = maps_widget.grid_layout
    assert layout["n"] == 32 == len(maps_widget.tile_order) == len(maps_widget.tile_titles)
    assert decode(maps_widget.grid_png).shape[:2] == (layout["height"], layout["width"])
    assert maps_widget.tile_titles[3].startswith("filter 3 · mean")
    assert maps_widget.sample == "sneaker" and maps_widget.error == ""


def test_changing_the_filter_changes_only_the_enlarged_tile(maps_widget):
    grid, tile = maps_widget.grid_png, maps_widget.tile_png
    events = []
    maps_widget.observe(lambda change: events.append(change["new"]), names="filter_index")
    maps_widget.filter_index = 7
    assert events == [7]
    assert maps_widget.grid_png == grid and maps_widget.tile_png != tile
    assert maps_widget.tile_caption.startswith("filter 7 of 32")


def test_changing_the_layer_redraws_and_clamps_the_filter(maps_widget):
    maps_widget.filter_index = 31
    maps_widget.layer = "block3_conv1"
    assert maps_widget.filter_count == 128 and maps_widget.grid_layout["n"] == 128
    maps_widget.layer = "features.0"  # module paths work too, and are shown by display name
    assert maps_widget.layer == "block1_conv1" and maps_widget.filter_count == 32


def test_bad_values_from_python_raise_with_the_valid_choices(maps_widget):
    with pytest.raises(traitlets.TraitError, match="did you mean .*'block1_conv1'"):
        maps_widget.layer = "block1_conv"
    with pytest.raises(traitlets.TraitError, match=r"valid: 0-31"):
        maps_widget.filter_index = 32
    with pytest.raises(traitlets.TraitError, match="Valid choices: gray, viridis"):
        maps_widget.colormap = "rainbow"
    assert maps_widget.layer == "block1_conv1" and maps_widget.filter_index == 0


def test_sorting_puts_the_strongest_channel_first(maps_widget):
    maps_widget.sort_by = "max"
    stats = cw.engine.channel_stats(maps_widget.maps())
    assert maps_widget.tile_order[0] == int(stats["max"].argmax())
    assert sorted(maps_widget.tile_order) == list(range(32))


def test_choosing_a_sample_changes_the_image(maps_widget):
    grid = maps_widget.grid_png
    maps_widget.sample = "trouser"
    assert maps_widget.grid_png != grid and maps_widget.image_name.startswith("trouser")


def test_a_bad_upload_shows_a_readable_error_and_keeps_the_view(maps_widget):
    grid = maps_widget.grid_png
    send_from_view(maps_widget, {"type": "upload", "name": "notes.txt"}, [b"not an image"])
    assert "not an image" in maps_widget.error
    assert maps_widget.grid_png == grid
    good = io.BytesIO()
    Image.new("L", (40, 40), 200).save(good, format="PNG")
    send_from_view(maps_widget, {"type": "upload", "name": "gray.png"}, [good.getvalue()])
    assert maps_widget.error == "" and maps_widget.sample == "" and maps_widget.image_name.startswith("gray.png")


def test_returning_to_a_layer_uses_the_cache(maps_widget, monkeypatch):
    maps_widget.layer = "block2_conv1"
    maps_widget.layer = "block1_conv1"
    calls = []
    monkeypatch.setattr(type(maps_widget), "_grid_tiles", lambda self: calls.append(1))
    maps_widget.layer = "block2_conv1"
    assert calls == [] and maps_widget.error == ""


def test_save_png_writes_grid_and_enlarged_tile(maps_widget, tmp_path):
    path = tmp_path / "maps.png"
    maps_widget.save_png(path)
    saved = np.asarray(Image.open(path))
    grid = decode(maps_widget.grid_png)[..., :3]
    assert saved.shape[1] > grid.shape[1] and saved.shape[0] >= grid.shape[0]
    assert position_of(grid, saved) is not None
    assert position_of(render.caption(maps_widget.title, saved.shape[1], ink=(0, 0, 0)), saved) == (0, 0)


def test_a_saved_picture_says_what_the_live_view_says(fashion):
    """Issue 12: the title, the grid's caption (what tiles, rows and columns are), the enlarged
    view's caption and a small kernel's numbers are in the saved picture, drawn from the same
    traits the page writes, not only the colorbars."""
    widget = cw.FilterWeights(fashion, layer="block1_conv2", filter_index=6)
    saved = widget.picture()
    assert widget.grid_caption and widget.tile_caption and len(widget.tile_numbers) == 33
    column = max(widget._enlarged_picture.shape[1], 320)
    for name, part in [
        ("title", render.caption(widget.title, saved.shape[1], ink=(0, 0, 0))),
        ("grid caption", render.caption(widget.grid_caption, max(widget._grid_picture.shape[1], 320))),
        ("tile caption", render.caption(widget.tile_caption, column)),
        ("kernel numbers", render.kernel_tables(widget.tile_numbers, column)),
    ]:
        assert part.shape[0] > 0 and position_of(part, saved) is not None, f"the saved picture lacks the {name}"
    widget.filter_index = 7  # another kernel: other numbers in the picture
    assert position_of(render.kernel_tables(widget.tile_numbers, column), widget.picture()) is not None
    assert position_of(render.kernel_tables(widget.tile_numbers, column), saved) is None


def test_filter_weights_views(fashion):
    widget = cw.FilterWeights(fashion, layer="block1_conv2")
    assert widget.grid_layout["n"] == 32 and widget.colormap == "diverging"
    widget.view = "channels"
    assert widget.grid_layout["n"] == 32 * 32 and widget.grid_layout["columns"] == 32
    assert widget.tile_order[33] == 1  # row 1 is filter 1
    widget.filter_index = 4
    assert widget.tile_caption.startswith("filter 4 of 32 · 3x3 kernel · 32 input channels")


def test_filter_weights_first_layer_in_color():
    vgg = cw.load_model("vgg11", weights=None, device="cpu")
    widget = cw.FilterWeights(vgg, layer="block1_conv1")
    grid = decode(widget.grid_png)
    assert grid.shape[2] == 3 and widget.tile_caption.endswith("RGB kernel")
    with pytest.raises(traitlets.TraitError, match="Valid choices: auto, color, channels, summary"):
        widget.view = "rgb"


def test_too_many_channel_tiles_is_an_error_in_the_widget():
    vgg = cw.load_model("vgg11", weights=None, device="cpu")
    widget = cw.FilterWeights(vgg, layer="block5_conv2")
    grid = widget.grid_png
    widget.view = "channels"
    assert "use the summary view" in widget.error and widget.grid_png == grid


def test_images_travel_as_binary_and_stay_small():
    vgg = cw.load_model("vgg11", weights=None, device="cpu")
    widget = cw.FeatureMaps(vgg, "cat", layer="block5_conv2")
    state = widget.get_state()
    assert isinstance(state["grid_png"], (bytes, memoryview))
    assert widget.grid_layout["n"] == 512 and len(widget.grid_png) < 2_000_000


def test_feature_maps_default_to_after_relu_and_say_so(maps_widget):
    assert maps_widget.stage == "activation" and maps_widget.normalization == "layer"
    assert [o["label"] for o in maps_widget.stage_options] == ["after ReLU", "before ReLU (conv output)"]
    assert "after ReLU" in maps_widget.title and "· after ReLU ·" in maps_widget.tile_caption
    assert maps_widget.maps().min() >= 0
    grid = maps_widget.grid_png
    maps_widget.stage = "conv"
    assert "before ReLU" in maps_widget.title and "before ReLU" in maps_widget.tile_caption
    assert maps_widget.maps().min() < 0 and maps_widget.grid_png != grid
    with pytest.raises(traitlets.TraitError, match="activation, conv"):
        maps_widget.stage = "relu"


def test_layer_scale_colorbar_spans_the_data_and_a_zero_map_is_dark():
    model = cw.load_model("fashion-cnn", device="cpu")
    with torch.no_grad():  # filter 5 never fires: no weights and a negative bias, so zero after the ReLU
        model.module.features[0].weight[5] = 0
        model.module.features[0].bias[5] = -1
    widget = cw.FeatureMaps(model, "sneaker", layer="block1_conv1")
    maps = widget.maps()
    scale = widget.grid_colorbar
    assert scale["low"] == 0.0 and scale["high"] == pytest.approx(float(maps.max()))
    assert scale["ticks"][0]["label"] == "0" and scale["ticks"][-1]["value"] == pytest.approx(float(maps.max()))
    assert widget.tile_colorbar["high"] == scale["high"], "the enlarged view uses the grid's scale"
    widget.filter_index = 5
    darkest = cw.render.colormap_lut(widget.colormap)[0]
    assert (decode(widget.tile_png)[..., :3] == darkest).all()
    widget.filter_index = int(maps.amax((1, 2)).argmax())
    assert (decode(widget.tile_png)[..., :3] != darkest).any()
    widget.normalization = "tile"
    assert widget.grid_colorbar["ticks"][-1]["label"] == "tile max"
    assert widget.tile_colorbar["high"] == pytest.approx(float(maps[widget.filter_index].max()))


def test_a_diverging_colormap_marks_zero_on_the_colorbar(maps_widget):
    maps_widget.stage = "conv"
    maps_widget.colormap = "diverging"
    scale = maps_widget.grid_colorbar
    assert scale["low"] == -scale["high"] and scale["zero"] == 0.5
    assert "0" in [tick["label"] for tick in scale["ticks"]]


def test_untrained_models_say_so_in_every_title():
    model = cw.load_model("fashion-cnn", weights=None, device="cpu")
    assert "untrained (random weights)" in cw.FeatureMaps(model, "sneaker").title
    assert "untrained (random weights)" in cw.FilterWeights(model).title
    assert "untrained" not in cw.FilterWeights(cw.load_model("fashion-cnn", device="cpu")).title


def test_filter_weights_put_every_filter_on_one_numbered_scale_with_zero_marked(fashion):
    widget = cw.FilterWeights(fashion, layer="block1_conv1")
    weights = widget.weights()
    largest = float(weights.abs().max())
    scale = widget.grid_colorbar
    assert widget.normalization == "layer"
    assert (scale["low"], scale["high"]) == pytest.approx((-largest, largest))
    assert scale["zero"] == pytest.approx(0.5) and "0" in [tick["label"] for tick in scale["ticks"]]
    assert "blue negative, white 0, red positive" in scale["note"] and "one scale for all filters" in scale["note"]
    assert widget.tile_colorbar["low"] == scale["low"]  # the enlarged view has the grid's colours
    assert "single input channel" in widget.grid_caption
    # Each filter its own range: the ends say so instead of pretending to be numbers.
    widget.normalization = "tile"
    assert [tick["label"] for tick in widget.grid_colorbar["ticks"]] == ["-max |weight|", "0", "+max |weight|"]
    kernel = weights[0]
    assert widget.tile_colorbar["high"] == pytest.approx(float(kernel.abs().max()))


def test_filter_weights_write_out_the_numbers_of_a_small_kernel(fashion):
    widget = cw.FilterWeights(fashion, layer="block2_conv1")
    widget.filter_index = 3
    kernel = widget.weights()[3]
    tables = widget.tile_numbers
    assert tables[0]["label"] == "mean over the 32 input channels"
    np.testing.assert_allclose(tables[0]["values"], kernel.mean(0).numpy(), rtol=1e-5, atol=1e-8)
    assert [table["label"] for table in tables[1:3]] == ["input channel 0", "input channel 1"]
    np.testing.assert_allclose(tables[5]["values"], kernel[4].numpy())
    assert "averaged over its 32 input channels" in widget.grid_caption
    widget.view = "channels"
    assert widget.grid_caption.startswith("rows: the 64 filters (0-63, top to bottom) · columns: their 32 input channels")
    assert len(widget.tile_numbers) == 32
    big = cw.FilterWeights(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 7)))
    assert big.tile_numbers == [] and big.error == ""


def test_filter_weights_color_view_shows_zero_as_gray_and_says_what_colours_mean():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    with torch.no_grad():
        net[0].weight[2] = 0
        net[0].weight[1, 0] = 0.5  # a positive weight on red only
        net[0].weight[1, 1:] = -0.5
    widget = cw.FilterWeights(net)
    assert widget.shown_view == "color" and "red, green and blue" in widget.grid_caption
    assert "gray = 0" in widget.grid_colorbar["note"] and widget.grid_colorbar["zero"] == pytest.approx(0.5)
    layout, grid = widget.grid_layout, decode(widget.grid_png)
    column, row = 2 % layout["columns"], 2 // layout["columns"]
    x = layout["padding"] + column * (layout["tile_width"] + layout["padding"]) + layout["tile_width"] // 2
    y = layout["padding"] + row * (layout["tile_height"] + layout["label_height"] + layout["padding"]) + layout["tile_height"] // 2
    assert grid[y, x, :3].tolist() == [128, 128, 128]  # the zero filter is mid-gray, not stretched to look busy
    widget.filter_index = 1
    tables = widget.tile_numbers
    assert [table["label"] for table in tables] == ["red input", "green input", "blue input"]
    assert tables[0]["values"][0][0] == 0.5 and tables[0]["colors"][0][0] == "#ff0000"
    assert tables[1]["values"][1][1] == -0.5 and tables[1]["colors"][1][1] == "#000000"


@pytest.mark.parametrize("widget_class", ["GradCAM", "DeepDream", "ConvolutionExplainer"])
def test_every_image_widget_offers_the_samples_that_fit_the_model_first(fashion, widget_class):
    """Like FeatureMaps: for fashion-cnn the garments come first, and the photos say they are not like its pictures."""
    widget = getattr(cw, widget_class)(fashion, "sneaker")
    names = [option["name"] for option in widget.sample_options]
    assert names == list(cw.images.FASHION_SAMPLES) + list(cw.images.PHOTO_SAMPLES)
    assert all(option["label"] == option["name"] for option in widget.sample_options[:10])
    assert widget.sample_options[10] == {"name": "cat", "label": "cat (a color photo: not like fashion-cnn's pictures)"}
    assert all("not like fashion-cnn's pictures" in option["label"] for option in widget.sample_options[10:])
    widget.sample = "cat"  # a labelled photo is still chosen by its name
    assert widget.image_name.split("#")[0] == "cat"


def test_feature_maps_offer_the_samples_that_fit_the_model_and_say_what_it_expects(fashion):
    widget = cw.FeatureMaps(fashion, cw.sample_image("ankle_boot"))
    assert widget.image_name.split("#")[0] == "ankle_boot" and widget.sample == "ankle_boot"  # not "image 1"
    names = [option["name"] for option in widget.sample_options]
    assert names[:10] == list(cw.images.FASHION_SAMPLES)
    assert widget.sample_options[10] == {"name": "cat", "label": "cat (a color photo: not like fashion-cnn's pictures)"}
    assert widget.expects.startswith("fashion-cnn expects a 28x28 gray picture: a light garment centred on black")
    widget.sample = "cat"
    assert widget.input_caption == "what the model receives: 28x28 gray, from the 320x213 RGB picture cat"
    assert decode(widget.image_png).shape[:2] == (112, 112)  # the 28x28 input, each pixel 4x4
    photos = cw.FeatureMaps(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()))
    assert [option["label"] for option in photos.sample_options[:4]] == list(cw.images.PHOTO_SAMPLES)
    assert "Fashion-MNIST garment: not like" in photos.sample_options[4]["label"]
    assert photos.input_caption.startswith("what the model receives: 224x224 RGB")
