"""The Explorer in a real browser: a filter picked in one tab is selected in the others."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .jupyter import open_notebook, run_code, wait_for_output
from .test_static_pages_browser import left_and_saved, saved_png
from .test_tile_viewers import click_tile, focus

CELLS = [
    "import cnn_widgets as cw\nmodel = cw.load_model('fashion-cnn')",
    "from cnn_widgets.models.datasets import load_fashion_mnist\nimages, _ = load_fashion_mnist('test')",
    "explorer = cw.Explorer(model, cw.sample_image('sneaker'), dataset=images[:2000])\nmaps = explorer.maps\nexplorer",
]


@pytest.mark.browser
def test_filter_picked_in_feature_maps_is_picked_in_activation_maximization(page, jupyter_server, artifact_path):
    open_notebook(page, jupyter_server, CELLS)
    page.get_by_role("tab", name="Feature maps").click()
    maps = wait_for_output(page, ".cw-feature-maps").first
    maps.locator("select[data-trait=layer]").select_option("block3_conv1")
    expect(maps).to_have_attribute("data-tile-count", "128")
    click_tile(page, "maps", 12)
    expect(maps).to_have_attribute("data-filter-index", "12")

    page.get_by_role("tab", name="Maximization").click()
    maximization = wait_for_output(page, ".cw-maximization").first
    expect(maximization).to_have_attribute("data-layer", "block3_conv1")
    expect(maximization).to_have_attribute("data-filter-index", "12")
    expect(maximization.locator(".cw-caption")).to_contain_text("filter 12 of 128")
    expect(page.locator(".cw-strip-button[aria-pressed=true]")).to_have_text("block3_conv1 · 128 · 7×7")

    page.get_by_role("tab", name="Filter weights").click()
    weights = wait_for_output(page, ".cw-filter-weights").first
    expect(weights).to_have_attribute("data-filter-index", "12")
    assert run_code(page, "print(explorer.layer, explorer.filter_index)") == "block3_conv1 12"

    # Dataset examples of the same filter, with their strongest responses highlighted.
    run_code(page, "explorer.examples.wait()")
    page.get_by_role("tab", name="Dataset examples").click()
    examples = page.locator(".cw-dataset-examples").filter(has_text="filter 12: the 9 of 2,000 images")
    expect(examples).to_be_visible()
    page.screenshot(path=artifact_path(f"explorer-examples-{jupyter_server.frontend}.png"), full_page=True)
    page.get_by_role("tab", name="Maximization").click()
    page.screenshot(path=artifact_path(f"explorer-{jupyter_server.frontend}.png"), full_page=True)

    # Moving between the Explorer's parts leaves it as it is (no redraw while in use);
    # leaving the Explorer brings the notebook's saved picture of it up to date.
    node = page.locator(".cw-explorer").first
    node.evaluate("node => { node.dataset.marker = 'drawn before'; }")
    before = saved_png(page, 2)
    focus(maximization)
    page.keyboard.press("ArrowRight")
    expect(maximization).to_have_attribute("data-filter-index", "13")
    page.get_by_role("tab", name="Feature maps").click()  # pointer and focus move to the tab bar
    page.wait_for_timeout(1000)
    expect(node).to_have_attribute("data-marker", "drawn before")
    assert saved_png(page, 2) == before
    left_and_saved(page, 2, before)
