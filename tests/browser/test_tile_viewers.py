"""FilterWeights and FeatureMaps as a person sees them, in JupyterLab 4 and
Notebook 7: the grid appears with one tile per filter, arrow keys and clicks
change the enlarged filter and the Python trait, the layer dropdown redraws
the grid, and a bad upload reads as a message in the widget."""
from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from .jupyter import VIEWPORT, leave_widgets, open_notebook, run_code, wait_for_output

CELLS = [
    "import cnn_widgets as cw\nmodel = cw.load_model('fashion-cnn')",
    "maps = cw.FeatureMaps(model, 'sneaker', layer='block1_conv2')\nmaps",
    "weights = cw.FilterWeights(model, layer='block1_conv1')\nweights",
]


def focus(widget) -> None:
    """Give the widget the keyboard focus, as a click on it would; the notebook may
    take the focus back once when a cell finishes, so check and retry."""
    for _ in range(5):
        widget.focus()
        try:
            expect(widget).to_be_focused(timeout=1_000)
            return
        except AssertionError:
            continue
    expect(widget).to_be_focused()


def upload_not_a_picture(widget, tmp_path):
    """Upload a text file named notes.png through the widget's upload button, as a
    person might by mistake; returns the widget's error line, checked to show."""
    bogus = tmp_path / "notes.png"
    bogus.write_text("this is not a picture")
    widget.locator("input[type=file]").set_input_files(str(bogus))
    error = widget.locator(".cw-error")
    expect(error).to_be_visible()
    return error


def click_tile(page, widget, position: int) -> None:
    """Click the centre of grid position ``position``, using the layout Python sent."""
    layout = json.loads(run_code(page, f"import json; print(json.dumps({widget}.grid_layout))"))
    grid = page.locator(f".cw-{'feature-maps' if widget == 'maps' else 'filter-weights'} img.cw-grid")
    grid.scroll_into_view_if_needed()
    ratio = grid.bounding_box()["width"] / layout["width"]
    col, row = position % layout["columns"], position // layout["columns"]
    x = layout["padding"] + col * (layout["tile_width"] + layout["padding"]) + layout["tile_width"] / 2
    y = layout["padding"] + row * (layout["tile_height"] + layout["label_height"] + layout["padding"]) + layout["tile_height"] / 2
    grid.click(position={"x": x * ratio, "y": y * ratio})


@pytest.mark.browser
def test_feature_maps_and_filter_weights_in_the_browser(page, jupyter_server, artifact_path, tmp_path):
    open_notebook(page, jupyter_server, CELLS)
    maps = wait_for_output(page, ".cw-feature-maps").first
    weights = wait_for_output(page, ".cw-filter-weights").first

    # The grid appears with the right number of tiles, and its picture has loaded.
    expect(maps).to_have_attribute("data-tile-count", "32")
    expect(weights).to_have_attribute("data-tile-count", "32")
    grid = maps.locator("img.cw-grid")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=grid.element_handle())
    expect(maps.locator(".cw-caption")).to_contain_text("filter 0 of 32")

    # Arrow keys step through filters: the enlarged view, the caption and Python agree.
    tile_src = maps.locator("img.cw-tile").get_attribute("src")
    focus(maps)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(maps).to_have_attribute("data-filter-index", "2")
    expect(maps.locator(".cw-caption")).to_contain_text("filter 2 of 32")
    assert maps.locator("img.cw-tile").get_attribute("src") != tile_src
    assert run_code(page, "print(maps.filter_index)") == "2"
    focus(maps)  # running a cell moved the focus to the notebook
    page.keyboard.press("ArrowLeft")
    expect(maps).to_have_attribute("data-filter-index", "1")

    # Clicking a tile enlarges that filter.
    click_tile(page, "maps", 9)
    expect(maps).to_have_attribute("data-filter-index", "9")
    assert run_code(page, "print(maps.filter_index, maps.tile_order[9])") == "9 9"

    # Setting the trait from Python moves the view.
    run_code(page, "maps.filter_index = 30")
    expect(maps.locator(".cw-caption")).to_contain_text("filter 30 of 32")
    expect(maps.locator("input[type=range]")).to_have_value("30")

    # Another layer from the dropdown redraws the grid with that layer's filters.
    maps.locator("select[data-trait=layer]").select_option("block3_conv1")
    expect(maps).to_have_attribute("data-tile-count", "128")
    assert run_code(page, "print(maps.layer, maps.filter_count, maps.filter_index)") == "block3_conv1 128 30"
    # The README's picture: a window tall enough for the whole 128-tile grid (on smaller
    # windows the grid scrolls in its column, test_enlarged_in_sight.py).
    page.set_viewport_size({"width": 1400, "height": 1300})
    leave_widgets(page)  # no saved-picture update to rebuild the view under the camera
    maps.screenshot(path=artifact_path(f"feature-maps-{jupyter_server.frontend}.png"))
    page.set_viewport_size(VIEWPORT)

    # A bad upload is shown as readable text, and the widget keeps working.
    error = upload_not_a_picture(maps, tmp_path)
    expect(error).to_contain_text("not an image")
    maps.screenshot(path=artifact_path(f"feature-maps-error-{jupyter_server.frontend}.png"))
    maps.locator("select[data-trait=sample]").select_option("trouser")
    expect(error).to_be_hidden()
    assert run_code(page, "print(maps.image_name.split('#')[0], repr(maps.error))") == "trouser ''"

    # FilterWeights: the view picker and keyboard work the same way.
    focus(weights)
    page.keyboard.press("ArrowRight")
    expect(weights).to_have_attribute("data-filter-index", "1")
    weights.locator("select[data-trait=layer]").select_option("block2_conv1")
    weights.locator("select[data-trait=view]").select_option("channels")
    expect(weights).to_have_attribute("data-tile-count", str(64 * 32))
    assert run_code(page, "print(weights.view, weights.layer)") == "channels block2_conv1"
    weights.screenshot(path=artifact_path(f"filter-weights-{jupyter_server.frontend}.png"))
