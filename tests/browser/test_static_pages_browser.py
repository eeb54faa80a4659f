"""Saved widgets in a browser without Jupyter: a ``save_html`` page and a notebook
exported with ``cnn-widgets html`` open from file://, show the widgets as they
were last (pictures painted, controls that need Python disabled), and the
DeepDream frame player still plays."""
from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient
from playwright.sync_api import expect

import cnn_widgets as cw

import hashlib
import time

from .jupyter import (
    _CAPTURE_CONSOLE_ERRORS, console_errors, leave_widgets, notebook_cells, open_notebook, run_code, wait_for_output,
)
from .test_tile_viewers import focus

pytestmark = pytest.mark.browser


def open_page(page, path):
    page.add_init_script(_CAPTURE_CONSOLE_ERRORS)
    page.goto(path.as_uri())
    expect(page.locator('.cw-static[data-rendered="pending"]')).to_have_count(0)
    expect(page.locator('.cw-static[data-rendered="failed"]')).to_have_count(0)


def painted(locator) -> bool:
    return locator.evaluate("img => img.complete && img.naturalWidth > 0")


def test_a_saved_page_shows_the_widgets_offline(page, tmp_path, artifact_path):
    model = cw.load_model("fashion-cnn")
    maps = cw.FeatureMaps(model, "sneaker", layer="block2_conv1")
    maps.filter_index = 9
    dream = cw.DeepDream(model, "sandal", layer="block2_conv1", frames=4)
    dream.run(wait=True)
    path = cw.save_html(tmp_path / "snapshot.html", maps, dream, cw.GradCAM(model, "coat"), title="Lesson 3")
    open_page(page, path)
    expect(page.locator('.cw-static[data-rendered="true"]')).to_have_count(3)
    expect(page.locator(".cw-static-fallback")).to_have_count(0)  # the live-looking view replaced the PNG

    viewer = page.locator(".cw-feature-maps")
    expect(viewer).to_have_attribute("data-layer", "block2_conv1")
    expect(viewer).to_have_attribute("data-filter-index", "9")
    assert painted(viewer.locator("img.cw-grid")) and painted(viewer.locator("img.cw-tile"))
    expect(viewer.locator("select").first).to_be_disabled()  # choosing a layer needs Python
    grid = viewer.locator("img.cw-grid")
    grid.click(position={"x": 10, "y": 10})
    expect(viewer).to_have_attribute("data-filter-index", "9")  # so does picking a filter

    dreamer = page.locator(".cw-deepdream")
    expect(dreamer).to_have_attribute("data-frame-count", "4")
    play = dreamer.locator("button.cw-play")
    expect(play).to_be_enabled()  # the frame player runs in the page
    start = dreamer.get_attribute("data-frame-index")
    play.click()
    expect(dreamer).not_to_have_attribute("data-frame-index", start)
    expect(dreamer.locator("button.cw-run")).to_be_disabled()

    heatmap = page.locator(".cw-gradcam img").first
    assert painted(heatmap)
    assert console_errors(page) == []
    page.screenshot(path=artifact_path("static-page.png"), full_page=True)


def test_an_exported_notebook_shows_its_widgets_offline(page, tmp_path):
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("import cnn_widgets as cw\nmodel = cw.load_model('fashion-cnn')"),
            nbformat.v4.new_code_cell("weights = cw.FilterWeights(model)\nweights"),
            nbformat.v4.new_code_cell("weights.layer = 'block2_conv2'\nweights.filter_index = 5"),
        ]
    )
    NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
    nbformat.write(notebook, tmp_path / "lesson.ipynb")
    path = cw.export_notebook_html(tmp_path / "lesson.ipynb")
    page.route("http*://**", lambda route: route.abort())  # offline: nbconvert's MathJax and require.js cannot load
    open_page(page, path)
    viewer = page.locator(".cw-filter-weights")
    expect(viewer).to_have_attribute("data-layer", "block2_conv2")
    expect(viewer).to_have_attribute("data-filter-index", "5")
    assert painted(viewer.locator("img.cw-grid"))
    assert [error for error in console_errors(page) if "cnn-widgets" in error] == []


@pytest.mark.parametrize("frontend", ["lab"])
def test_the_saved_picture_follows_the_widget_in_jupyterlab(page, jupyter_server):
    """Arrow keys change the widget; once the next cell has run and the person has left
    the widget, the notebook's output (what a save writes) holds the new picture, and the
    widget still answers keys."""
    open_notebook(
        page,
        jupyter_server,
        ["import cnn_widgets as cw, hashlib\nmodel = cw.load_model('fashion-cnn')", "maps = cw.FeatureMaps(model, 'sneaker', layer='block1_conv2')\nmaps"],
    )
    viewer = wait_for_output(page, ".cw-feature-maps").first
    focus(viewer)
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    expect(viewer).to_have_attribute("data-filter-index", "3")
    shown = run_code(page, "print(hashlib.sha256(maps._repr_mimebundle_()[0]['image/png'].encode()).hexdigest())")
    # The keyboard is still in the view: the update waits until the person leaves it (static.py).
    leave_widgets(page)
    assert hashlib.sha256(saved_png(page, 1).encode()).hexdigest() == shown
    viewer = page.locator(".cw-feature-maps")
    expect(viewer).to_have_count(1)
    focus(viewer.first)
    page.keyboard.press("ArrowRight")
    expect(viewer.first).to_have_attribute("data-filter-index", "4")
    assert run_code(page, "print(maps.filter_index)") == "4"


def saved_png(page, cell: int) -> str:
    """The PNG in the notebook model's first output of ``cell``: what a save writes."""
    return notebook_cells(page)[cell]["outputs"][0]["data"]["image/png"]


def left_and_saved(page, cell: int, before: str, timeout: float = 15.0) -> str:
    """Move the pointer and the keyboard focus away from every widget, then wait (no
    cell runs) until the saved picture of ``cell`` differs from ``before``; return it."""
    page.mouse.move(2, 2)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    deadline = time.monotonic() + timeout
    while (now := saved_png(page, cell)) == before:
        assert time.monotonic() < deadline, "leaving the widget did not update its saved picture"
        time.sleep(0.1)
    return now


@pytest.mark.parametrize("frontend", ["lab", "notebook"])
def test_leaving_a_widget_brings_its_saved_picture_up_to_date(page, jupyter_server):
    """No cell runs: the person changes the filter with the keyboard, then clicks
    elsewhere; the notebook's output now holds the new picture."""
    open_notebook(
        page,
        jupyter_server,
        ["import cnn_widgets as cw, hashlib\nmodel = cw.load_model('fashion-cnn')", "maps = cw.FeatureMaps(model, 'sneaker', layer='block1_conv2')\nmaps"],
    )
    viewer = wait_for_output(page, ".cw-feature-maps").first
    before = saved_png(page, 1)
    focus(viewer)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(viewer).to_have_attribute("data-filter-index", "2")
    assert saved_png(page, 1) == before  # in use: left alone
    after = left_and_saved(page, 1, before)
    shown = run_code(page, "print(hashlib.sha256(maps._repr_mimebundle_()[0]['image/png'].encode()).hexdigest())")
    assert hashlib.sha256(after.encode()).hexdigest() == shown
    expect(page.locator(".cw-feature-maps")).to_have_count(1)
