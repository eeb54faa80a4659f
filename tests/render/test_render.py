"""Tests for cnn_widgets.render: the pictures a user sees must be right to the pixel."""
from __future__ import annotations

import doctest
import importlib
import io
import pathlib

import numpy as np
import pytest
from PIL import Image

from cnn_widgets import render
from cnn_widgets.render import (
    COLORMAPS,
    NORMALIZATIONS,
    WEIGHT_VIEWS,
    colorize,
    encode,
    encode_gif,
    encode_png,
    grid,
    grid_layout,
    normalize,
    overlay,
    save_png,
    tile_scale,
    to_uint8_image,
    upscale,
    weight_tiles,
)

RENDER_DIR = pathlib.Path(render.__file__).parent
RENDER_MODULES = sorted(path.stem for path in RENDER_DIR.glob("*.py") if not path.stem.startswith("_"))


# --- normalize ---------------------------------------------------------------


def test_tile_mode_scales_each_map_by_its_own_range():
    maps = np.array([[[0.0, 1.0], [2.0, 4.0]], [[10.0, 20.0], [20.0, 30.0]]])
    result = normalize(maps, mode="tile")
    assert result.dtype == np.float32 and result.shape == maps.shape
    np.testing.assert_allclose(result[0], [[0.0, 0.25], [0.5, 1.0]])
    np.testing.assert_allclose(result[1], [[0.0, 0.5], [0.5, 1.0]])


def test_layer_mode_shares_one_range_so_weak_maps_stay_dark():
    maps = np.array([[[0.0, 1.0]], [[0.0, 4.0]]])
    np.testing.assert_allclose(normalize(maps, mode="layer"), [[[0.0, 0.25]], [[0.0, 1.0]]])


def test_fixed_mode_uses_vrange_and_clips():
    maps = np.array([[-5.0, 0.0, 1.0, 2.0, 9.0]])
    np.testing.assert_allclose(normalize(maps, mode="fixed", vrange=(0, 2)), [[0.0, 0.0, 0.5, 1.0, 1.0]])


def test_fixed_mode_needs_a_valid_vrange():
    with pytest.raises(ValueError, match="vrange"):
        normalize(np.zeros((2, 2)), mode="fixed")
    with pytest.raises(ValueError, match="low < high"):
        normalize(np.zeros((2, 2)), mode="fixed", vrange=(1, 1))


def test_symmetric_puts_zero_at_the_middle():
    maps = np.array([[-1.0, 0.0, 4.0]])
    for mode, options in [("tile", {}), ("layer", {}), ("fixed", {"vrange": (-2, 4)})]:
        result = normalize(maps, mode=mode, symmetric=True, **options)
        assert result[0, 1] == pytest.approx(0.5), mode
        assert result[0, 2] == pytest.approx(1.0), mode
        assert result[0, 0] == pytest.approx(0.375), mode


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("mode", NORMALIZATIONS)
def test_dead_maps_render_flat_and_never_nan(mode, symmetric):
    maps = np.stack([np.full((3, 3), 2.0), np.zeros((3, 3)), np.arange(9.0).reshape(3, 3)])
    result = normalize(maps, mode=mode, vrange=(0.0, 8.0), symmetric=symmetric)
    assert np.isfinite(result).all()
    assert ((result >= 0) & (result <= 1)).all()
    for dead in result[:2]:
        assert np.ptp(dead) == 0


def test_a_dead_map_alone_is_black_or_middle_gray():
    assert normalize(np.full((4, 4), 3.0)).max() == 0.0
    np.testing.assert_array_equal(normalize(np.full((4, 4), 3.0), symmetric=True), 0.5)
    np.testing.assert_array_equal(normalize(np.zeros((2, 4, 4)), mode="layer", symmetric=True), 0.5)


def test_a_dead_map_in_a_shared_range_keeps_its_position():
    maps = np.stack([np.full((2, 2), 2.0), np.array([[0.0, 4.0], [0.0, 4.0]])])
    np.testing.assert_allclose(normalize(maps, mode="layer")[0], 0.5)
    np.testing.assert_allclose(normalize(maps[:1], mode="fixed", vrange=(0, 8))[0], 0.25)


def test_non_finite_values_count_as_zero():
    maps = np.array([[np.nan, np.inf, -np.inf, 0.0, 2.0]])
    np.testing.assert_allclose(normalize(maps), [[0.0, 0.0, 0.0, 0.0, 1.0]])


def test_unknown_normalization_names_the_valid_modes():
    with pytest.raises(ValueError) as error:
        normalize(np.zeros((2, 2)), mode="global")
    for mode in ("tile", "layer", "fixed"):
        assert mode in str(error.value)


def test_torch_tensors_are_accepted_even_with_gradients():
    torch = pytest.importorskip("torch")
    maps = torch.tensor([[0.0, 2.0], [4.0, 8.0]], requires_grad=True) * 1
    np.testing.assert_allclose(normalize(maps), [[0.0, 0.25], [0.5, 1.0]])
    tiles, _ = weight_tiles(torch.zeros(2, 3, 3, 3, dtype=torch.bfloat16))
    assert tiles.shape == (2, 3, 3, 3)
    assert to_uint8_image(torch.ones(3, 2, 2)).min() == 255


# --- colormaps ---------------------------------------------------------------


def test_colormaps_include_the_promised_names():
    for name in ("gray", "viridis", "inferno", "magma", "diverging", "turbo", "jet"):
        assert name in COLORMAPS


def test_colorize_keeps_leading_dims_and_adds_rgb():
    values = np.linspace(0, 1, 24).reshape(2, 3, 4)
    for name in COLORMAPS:
        pixels = colorize(values, name)
        assert pixels.dtype == np.uint8 and pixels.shape == (2, 3, 4, 3)


def test_gray_endpoints_are_black_and_white_and_viridis_differs():
    gray = colorize(np.array([0.0, 1.0]), "gray")
    assert gray.tolist() == [[0, 0, 0], [255, 255, 255]]
    viridis = colorize(np.array([0.0, 1.0]), "viridis")
    assert not np.array_equal(viridis, gray)
    # viridis runs from dark purple to yellow.
    assert viridis[0, 2] > viridis[0, 1] and viridis[1, 0] > 200 and viridis[1, 2] < 100


def test_colorize_is_monotonic_in_gray():
    levels = colorize(np.linspace(0, 1, 256), "gray")[:, 0].astype(int)
    assert (np.diff(levels) >= 0).all() and levels[0] == 0 and levels[-1] == 255


def test_diverging_is_blue_then_white_then_red():
    low, middle, high = colorize(np.array([0.0, 0.5, 1.0]), "diverging").astype(int)
    assert low[2] > low[0], "negative values are blue"
    assert high[0] > high[2], "positive values are red"
    assert middle.min() > 230, "zero is near white"


def test_colorize_clips_out_of_range_values():
    np.testing.assert_array_equal(colorize(np.array([-3.0, 7.0]), "magma"), colorize(np.array([0.0, 1.0]), "magma"))


def test_unknown_colormap_names_the_valid_ones():
    with pytest.raises(ValueError) as error:
        colorize(np.zeros(3), "virdis")
    assert "viridis" in str(error.value) and "diverging" in str(error.value)


# --- upscale and grids ---------------------------------------------------------


def test_upscale_repeats_pixels_exactly():
    image = np.arange(6, dtype=np.uint8).reshape(2, 3)
    big = upscale(image, 3)
    assert big.shape == (6, 9)
    for y in range(6):
        for x in range(9):
            assert big[y, x] == image[y // 3, x // 3]
    color = upscale(np.arange(12, dtype=np.uint8).reshape(2, 2, 3), 2)
    assert color.shape == (4, 4, 3) and color[3, 3].tolist() == [9, 10, 11]


def test_upscale_rejects_non_integer_factors():
    with pytest.raises(TypeError):
        upscale(np.zeros((2, 2)), 1.5)
    with pytest.raises(ValueError):
        upscale(np.zeros((2, 2)), 0)


def test_tile_scale_makes_the_longer_side_about_target():
    assert tile_scale(3, 3) * 3 == pytest.approx(64, abs=3)
    assert tile_scale(5, 10, target=100) == 10
    assert tile_scale(500, 500) == 1


def test_grid_layout_defaults_to_a_square_ish_grid():
    layout = grid_layout(64, 3, 3)
    assert (layout["columns"], layout["rows"]) == (8, 8)
    layout = grid_layout(10, 4, 5, padding=2, scale=3)
    assert (layout["columns"], layout["rows"]) == (4, 3)
    assert (layout["tile_height"], layout["tile_width"], layout["label_height"]) == (12, 15, 0)
    assert layout["width"] == 2 + 4 * (15 + 2)
    assert layout["height"] == 2 + 3 * (12 + 2)


def _tile_origin(layout, index):
    row, column = divmod(index, layout["columns"])
    x = layout["padding"] + column * (layout["tile_width"] + layout["padding"])
    y = layout["padding"] + row * (layout["tile_height"] + layout["label_height"] + layout["padding"])
    return y, x


def _distinct_tiles(count, height, width):
    rng = np.random.default_rng(1)
    return rng.integers(0, 200, size=(count, height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("columns,padding,scale", [(None, 1, 1), (3, 2, 4), (7, 0, 2)])
def test_each_tile_lands_exactly_where_the_layout_says(columns, padding, scale):
    tiles = _distinct_tiles(7, 2, 3)
    picture = grid(tiles, columns=columns, padding=padding, background=255, scale=scale)
    layout = grid_layout(7, 2, 3, columns=columns, padding=padding, scale=scale)
    assert picture.dtype == np.uint8
    assert picture.shape == (layout["height"], layout["width"], 3)
    covered = np.zeros(picture.shape[:2], dtype=bool)
    for index, tile in enumerate(tiles):
        y, x = _tile_origin(layout, index)
        placed = picture[y : y + layout["tile_height"], x : x + layout["tile_width"]]
        np.testing.assert_array_equal(placed, upscale(tile, scale))
        covered[y : y + layout["tile_height"], x : x + layout["tile_width"]] = True
    # Everything else is background (tiles use values < 200, so none is 255 by chance).
    assert (picture[~covered] == 255).all()


def test_grid_expands_gray_tiles_and_honors_an_rgb_background():
    tiles = np.arange(4 * 2 * 2, dtype=np.uint8).reshape(4, 2, 2)
    picture = grid(tiles, padding=1, background=(10, 20, 30))
    assert picture[0, 0].tolist() == [10, 20, 30]
    assert picture[1, 1].tolist() == [0, 0, 0]
    y, x = _tile_origin(grid_layout(4, 2, 2), 3)
    assert picture[y + 1, x + 1].tolist() == [15, 15, 15]


def test_labels_add_a_band_under_each_tile_without_moving_columns():
    tiles = _distinct_tiles(5, 8, 8)
    labels = [f"filter {i}" for i in range(5)]
    plain = grid_layout(5, 8, 8, scale=6)
    layout = grid_layout(5, 8, 8, scale=6, labels=True)
    picture = grid(tiles, scale=6, labels=labels)
    assert layout["label_height"] > 5
    assert picture.shape == (layout["height"], layout["width"], 3)
    assert layout["width"] == plain["width"]
    assert layout["height"] == plain["height"] + layout["rows"] * layout["label_height"]
    for index, tile in enumerate(tiles):
        y, x = _tile_origin(layout, index)
        np.testing.assert_array_equal(picture[y : y + 48, x : x + 48], upscale(tile, 6))
        band = picture[y + 48 : y + 48 + layout["label_height"], x : x + 48]
        assert (band < 128).any(), "the label is drawn as dark text in its band"
    # Two different labels draw different text.
    first = picture[1 + 48 : 1 + 48 + layout["label_height"], 1 : 1 + 48]
    y, x = _tile_origin(layout, 1)
    second = picture[y + 48 : y + 48 + layout["label_height"], x : x + 48]
    assert not np.array_equal(first, second)


def test_grid_checks_its_inputs():
    with pytest.raises(ValueError, match="one label per tile"):
        grid(_distinct_tiles(3, 2, 2), labels=["a", "b"])
    with pytest.raises(TypeError, match="uint8"):
        grid(np.zeros((3, 2, 2)))
    with pytest.raises(ValueError, match="shape"):
        grid(np.zeros((3, 2, 2, 4), dtype=np.uint8))


# --- overlay and to_uint8_image -------------------------------------------------


def test_overlay_opacity_zero_is_the_image_and_one_is_the_heatmap():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, size=(8, 6, 3), dtype=np.uint8)
    heatmap = rng.random((8, 6))
    np.testing.assert_array_equal(overlay(image, heatmap, opacity=0.0), image)
    np.testing.assert_array_equal(overlay(image, heatmap, "inferno", opacity=1.0), colorize(heatmap, "inferno"))


def test_overlay_resizes_a_small_heatmap_to_the_image():
    image = Image.new("RGB", (20, 10), (50, 50, 50))
    heatmap = np.array([[0.0, 1.0]])
    result = overlay(image, heatmap, colormap="gray", opacity=1.0)
    assert result.shape == (10, 20, 3)
    # Left half stays dark, right half bright, with a smooth (bilinear) ramp between.
    assert result[5, 0, 0] < 30 and result[5, 19, 0] > 225
    assert (np.diff(result[5, :, 0].astype(int)) >= 0).all()
    assert len(np.unique(result[5, :, 0])) > 3


def test_overlay_accepts_gray_images_and_rejects_bad_opacity():
    gray = np.full((4, 4), 100, dtype=np.uint8)
    assert overlay(gray, np.zeros((4, 4)), opacity=0.0)[0, 0].tolist() == [100, 100, 100]
    for opacity in (-0.1, 1.5):
        with pytest.raises(ValueError, match="opacity"):
            overlay(gray, np.zeros((4, 4)), opacity=opacity)


def test_to_uint8_image_from_chw_and_gray():
    chw = np.zeros((3, 2, 4))
    chw[0] = 1.0
    rgb = to_uint8_image(chw)
    assert rgb.shape == (2, 4, 3) and rgb[0, 0].tolist() == [255, 0, 0]
    assert to_uint8_image(np.full((2, 2), 0.5))[0, 0].tolist() == [128, 128, 128]
    assert to_uint8_image(np.full((1, 2, 2), 2.0)).max() == 255
    with pytest.raises(ValueError, match="images\\[0\\]"):
        to_uint8_image(np.zeros((2, 3, 4, 4)))


# --- encoding --------------------------------------------------------------------


def _decode(data):
    return np.asarray(Image.open(io.BytesIO(data)))


def test_png_is_deterministic_and_lossless():
    rng = np.random.default_rng(3)
    picture = rng.integers(0, 256, size=(17, 23, 3), dtype=np.uint8)
    assert encode_png(picture) == encode_png(picture.copy())
    assert encode(picture) == encode_png(picture)
    np.testing.assert_array_equal(_decode(encode_png(picture)), picture)
    gray = picture[..., 0]
    np.testing.assert_array_equal(_decode(encode_png(gray)), gray)


def test_lossy_formats_decode_to_the_same_size():
    picture = np.full((16, 24, 3), 90, dtype=np.uint8)
    for name, magic in (("webp", b"RIFF"), ("jpeg", b"\xff\xd8")):
        data = encode(picture, name, quality=80)
        assert data.startswith(magic)
        decoded = _decode(data)
        assert decoded.shape == picture.shape
        assert np.abs(decoded.astype(int) - 90).max() < 8


def test_unknown_format_names_the_valid_ones():
    with pytest.raises(ValueError) as error:
        encode(np.zeros((2, 2), dtype=np.uint8), "bmp")
    for name in ("png", "webp", "jpeg"):
        assert name in str(error.value)


def test_encode_rejects_float_arrays_with_a_hint():
    with pytest.raises(TypeError, match="colorize"):
        encode_png(np.zeros((2, 2, 3)))


def test_save_png_writes_one_file(tmp_path):
    picture = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    path = save_png(picture, tmp_path / "out.png")
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(path)), picture)
    assert path.read_bytes() == encode_png(picture)


def test_save_png_into_a_missing_folder_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_png(np.zeros((2, 2), dtype=np.uint8), tmp_path / "missing" / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_gif_has_one_frame_per_input_frame():
    frames = [np.full((6, 8, 3), value, dtype=np.uint8) for value in (0, 60, 120, 180, 240)]
    gif = Image.open(io.BytesIO(encode_gif(frames, duration_ms=50)))
    assert gif.format == "GIF" and gif.size == (8, 6)
    assert gif.n_frames == 5
    assert gif.info["duration"] == 50 and gif.info["loop"] == 0
    gif.seek(2)
    assert np.asarray(gif.convert("RGB"))[0, 0].tolist() == [120, 120, 120]


def test_gif_frames_must_share_one_size():
    with pytest.raises(ValueError, match="same size"):
        encode_gif([np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4, 3), np.uint8)])
    with pytest.raises(ValueError, match="at least one frame"):
        encode_gif([])


# --- weight tiles ------------------------------------------------------------------


def test_weight_views_are_listed():
    assert WEIGHT_VIEWS == ("auto", "color", "channels", "summary")


def test_auto_view_is_color_for_rgb_input_and_summary_otherwise():
    rng = np.random.default_rng(5)
    rgb_weights = rng.normal(size=(6, 3, 3, 3))
    tiles, labels = weight_tiles(rgb_weights)
    np.testing.assert_array_equal(tiles, weight_tiles(rgb_weights, view="color")[0])
    assert tiles.shape == (6, 3, 3, 3) and labels == [f"filter {i}" for i in range(6)]
    deep = rng.normal(size=(4, 16, 3, 3))
    tiles, labels = weight_tiles(deep)
    np.testing.assert_array_equal(tiles, weight_tiles(deep, view="summary")[0])
    assert tiles.shape == (4, 3, 3, 3) and labels[3] == "filter 3"


def test_color_view_maps_each_filters_min_to_black_and_max_to_full():
    weights = np.zeros((2, 3, 1, 2))
    weights[0, 0] = [[-1.0, 3.0]]  # filter 0: red channel spans the filter's range
    weights[1] = 10.0  # filter 1: flat except one strong blue weight
    weights[1, 2, 0, 1] = 20.0
    tiles, _ = weight_tiles(weights, view="color")
    assert tiles[0, 0, 0].tolist() == [0, 64, 64]
    assert tiles[0, 0, 1].tolist() == [255, 64, 64]
    assert tiles[1, 0, 0].tolist() == [0, 0, 0]
    assert tiles[1, 0, 1].tolist() == [0, 0, 255]
    # In "layer" mode filter 0's values are small next to filter 1's.
    layer_tiles, _ = weight_tiles(weights, view="color", normalization="layer")
    assert layer_tiles[0].max() < 128 and layer_tiles[1].max() == 255


def test_channels_view_has_one_tile_per_filter_and_input_channel():
    weights = np.zeros((3, 4, 2, 2))
    weights[2, 1] = 5.0  # filter 2, input channel 1: positive -> red
    weights[0, 3] = -5.0  # filter 0, input channel 3: negative -> blue
    tiles, labels = weight_tiles(weights, view="channels", normalization="layer")
    assert tiles.shape == (12, 2, 2, 3)
    assert labels[0] == "f0 c0" and labels[9] == "f2 c1" and labels[11] == "f2 c3"
    red = tiles[2 * 4 + 1, 0, 0].astype(int)
    blue = tiles[0 * 4 + 3, 0, 0].astype(int)
    zero = tiles[5, 0, 0].astype(int)
    assert red[0] > red[2] and blue[2] > blue[0]
    assert zero.tolist() == colorize(np.array(0.5), "diverging").tolist()


def test_summary_view_averages_over_input_channels():
    weights = np.zeros((2, 2, 1, 2))
    weights[0, 0] = [[1.0, -1.0]]
    weights[0, 1] = [[1.0, 1.0]]  # mean: [1, 0]
    tiles, labels = weight_tiles(weights, view="summary", colormap="gray")
    assert tiles.shape == (2, 1, 2, 3) and labels == ["filter 0", "filter 1"]
    assert tiles[0, 0].tolist() == [[255, 255, 255], [128, 128, 128]]
    assert (tiles[1] == 128).all(), "an all-zero filter is the middle color"


def test_weight_tiles_bad_names_and_shapes_raise():
    with pytest.raises(ValueError) as error:
        weight_tiles(np.zeros((2, 3, 3, 3)), view="rgb")
    for view in WEIGHT_VIEWS:
        assert view in str(error.value)
    with pytest.raises(ValueError, match="3 input channels"):
        weight_tiles(np.zeros((2, 16, 3, 3)), view="color")
    with pytest.raises(ValueError, match="tile"):
        weight_tiles(np.zeros((2, 3, 3, 3)), normalization="per-filter")
    with pytest.raises(ValueError, match="out, in, kh, kw"):
        weight_tiles(np.zeros((3, 3, 3)))


# --- the package as a whole ----------------------------------------------------------


@pytest.mark.parametrize("module_name", ["__init__", *RENDER_MODULES])
def test_docstring_examples_run(module_name):
    name = "cnn_widgets.render" if module_name == "__init__" else f"cnn_widgets.render.{module_name}"
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"np": np}, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0, "every module shows at least one example"


def test_render_never_imports_the_rest_of_the_package_or_torch():
    """On the real module graph (grimp, which import-linter uses): relative imports count,
    and so do imports through another module."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("cnn_widgets", include_external_packages=True)
    for package in ("cnn_widgets.widgets", "cnn_widgets.engine", "cnn_widgets.models", "cnn_widgets.export", "cnn_widgets.cli"):
        chain = graph.find_shortest_chain(importer="cnn_widgets.render", imported=package, as_packages=True)
        assert chain is None, f"render reaches {package}: {' -> '.join(chain)}"
    for module in graph.find_children("cnn_widgets.render") | {"cnn_widgets.render"}:
        assert "torch" not in graph.find_modules_directly_imported_by(module), f"{module} imports torch"
