"""A view the person is using keeps the keyboard: when the notebook draws it anew (the
saved picture brought up to date while the person is on it: a late "left" message,
a cell finishing elsewhere), the new view has the focus and the arrow keys go on
working, in JupyterLab 4 and Notebook 7."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .jupyter import open_notebook, run_code, wait_for_output
from .test_tile_viewers import focus

CELLS = [
    "import threading, cnn_widgets as cw\nfrom cnn_widgets.widgets import static\nmodel = cw.load_model('fashion-cnn')",
    "maps = cw.FeatureMaps(model, 'sneaker', layer='block1_conv2')\nmaps",
]
# In 4 s, change the view from Python and update its saved picture: the notebook draws the view anew.
REDRAW_SOON = """redrawn = threading.Event()
def redraw():
    maps.colormap = 'magma'
    static.refresh()
    redrawn.set()
threading.Timer(4.0, redraw).start()"""


@pytest.mark.browser
def test_the_arrow_keys_keep_working_after_the_view_is_drawn_anew(page, jupyter_server):
    open_notebook(page, jupyter_server, CELLS)
    viewer = wait_for_output(page, ".cw-feature-maps").first
    expect(viewer).to_have_attribute("data-tile-count", "32")
    run_code(page, REDRAW_SOON)
    focus(viewer)
    viewer.evaluate("root => { root.dataset.before = 'redraw'; }")
    page.keyboard.press("ArrowRight")
    expect(viewer).to_have_attribute("data-filter-index", "1")

    redrawn = page.locator(".jp-OutputArea-output .cw-feature-maps:not([data-before])")
    expect(redrawn).to_have_count(1, timeout=30_000)  # the old view is gone, a new one drawn
    expect(page.locator(".cw-feature-maps[data-before]")).to_have_count(0)
    expect(redrawn.locator("select[data-trait=colormap]")).to_have_value("magma")
    expect(redrawn).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(redrawn).to_have_attribute("data-filter-index", "2")
    assert run_code(page, "print(maps.filter_index)") == "2"
