"""Clicking a tile always changes something the person can see: on a 1280x720 window
(JupyterLab with its file browser open, and Notebook 7), after a click on a tile deep
in the grid of a 128-channel layer, the enlarged picture is inside the window."""
from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from .jupyter import open_notebook, run_code, wait_for_output

CELLS = [
    "import cnn_widgets as cw\nmodel = cw.load_model('fashion-cnn')",
    "maps = cw.FeatureMaps(model, 'sneaker', layer='block3_conv1')\nmaps",
]
SMALL_WINDOW = {"width": 1280, "height": 720}


def click_position(grid, layout: dict, position: int) -> None:
    """Click the centre of grid position ``position`` as a person would (the grid scrolls
    into view as needed), from the layout Python sent; no cell runs in between, so the
    view is in use all along."""
    ratio = grid.bounding_box()["width"] / layout["width"]
    col, row = position % layout["columns"], position // layout["columns"]
    x = layout["padding"] + col * (layout["tile_width"] + layout["padding"]) + layout["tile_width"] / 2
    y = layout["padding"] + row * (layout["tile_height"] + layout["label_height"] + layout["padding"]) + layout["tile_height"] / 2
    grid.click(position={"x": x * ratio, "y": y * ratio})


def inside_window(box: dict) -> bool:
    return box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= SMALL_WINDOW["width"] \
        and box["y"] + box["height"] <= SMALL_WINDOW["height"]


@pytest.mark.browser
def test_the_enlarged_view_is_in_sight_after_a_click_deep_in_the_grid(page, jupyter_server, artifact_path):
    page.set_viewport_size(SMALL_WINDOW)
    open_notebook(page, jupyter_server, CELLS)
    if jupyter_server.frontend == "lab":
        page.evaluate("() => window.jupyterapp.commands.execute('filebrowser:activate')")
        expect(page.locator(".jp-FileBrowser")).to_be_visible()
    maps = wait_for_output(page, ".cw-feature-maps").first
    expect(maps).to_have_attribute("data-tile-count", "128")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=maps.locator("img.cw-grid").element_handle())

    order = json.loads(run_code(page, "import json; print(json.dumps(maps.tile_order))"))
    layout = json.loads(run_code(page, "print(json.dumps(maps.grid_layout))"))
    # A grid taller than most of the window scrolls in its column, and says so while tiles are out of sight.
    more = maps.locator(".cw-grid-more")
    if maps.locator(".cw-grid-scroll").evaluate("s => s.scrollTop === 0 && s.scrollHeight - s.clientHeight > 2"):
        expect(more).to_be_visible()
    for position in (120, 127):  # the last rows of the grid
        click_position(maps.locator("img.cw-grid"), layout, position)
        expect(maps).to_have_attribute("data-filter-index", str(order[position]))
        expect(maps.locator(".cw-caption")).to_contain_text(f"filter {order[position]} of 128")
        tile = maps.locator("img.cw-tile")
        box = tile.bounding_box()
        assert box is not None and inside_window(box), (position, box)
        # Beside the grid, not wrapped under it.
        assert box["x"] > maps.locator("img.cw-grid").bounding_box()["x"] + 200, box
    expect(more).to_be_hidden()  # the last row is in sight
    page.screenshot(path=artifact_path(f"enlarged-in-sight-{jupyter_server.frontend}.png"))


EXPLORER_CELLS = [
    "import cnn_widgets as cw\nfrom cnn_widgets.models.datasets import load_fashion_mnist\nmodel = cw.load_model('fashion-cnn')",
    "explorer = cw.Explorer(model, 'sneaker', layer='block3_conv1', dataset=load_fashion_mnist('test')[0][:100])\nexplorer",
]


@pytest.mark.browser
@pytest.mark.parametrize("frontend", ["lab"])
def test_the_explorers_tabs_explain_themselves_and_keep_the_enlarged_view_in_sight(page, jupyter_server, artifact_path):
    """The Explorer at 1280x720 in JupyterLab with its file browser open: every tab starts with a line on
    what it shows, and a click deep in a tab's 128-tile grid leaves the enlarged picture inside the window."""
    page.set_viewport_size(SMALL_WINDOW)
    open_notebook(page, jupyter_server, EXPLORER_CELLS)
    page.evaluate("() => window.jupyterapp.commands.execute('filebrowser:activate')")
    expect(page.locator(".jp-FileBrowser")).to_be_visible()
    explorer = wait_for_output(page, ".cw-explorer").first
    titles = json.loads(run_code(page, "import json; print(json.dumps(explorer.titles))"))
    assert titles == ["Filter weights", "Feature maps", "Maximization", "DeepDream", "Heatmaps", "Dataset examples", "Unit"]
    grids = {"Filter weights": "weights", "Feature maps": "maps"}  # the tabs with a grid of the layer's 128 filters
    for title in titles:
        explorer.get_by_role("tab", name=title).click()
        about = explorer.locator(".cw-tab-about:visible")
        expect(about).to_have_count(1)
        text = about.inner_text()
        assert 40 < len(text) and "\n" not in text.strip(), (title, text)  # one line (sentence) on what it shows
        if title not in grids:
            continue
        view = explorer.locator(".cw-tab-panel:visible .cw-tile-viewer")
        expect(view).to_have_attribute("data-tile-count", "128")
        grid = view.locator("img.cw-grid")
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=grid.element_handle())
        layout = json.loads(run_code(page, f"print(json.dumps(explorer.{grids[title]}.grid_layout))"))
        order = json.loads(run_code(page, f"print(json.dumps(explorer.{grids[title]}.tile_order))"))
        click_position(grid, layout, 127)
        expect(view).to_have_attribute("data-filter-index", str(order[127]))
        box = view.locator("img.cw-tile").bounding_box()
        assert box is not None and inside_window(box), (title, box)
    page.screenshot(path=artifact_path("explorer-tabs-1280x720-lab.png"))
