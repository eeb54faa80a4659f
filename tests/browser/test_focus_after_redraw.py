"""A view the person is using is never drawn anew, and keeps the keyboard if it is.

Updating a widget's saved picture makes JupyterLab and Notebook 7 rebuild its view. The
views report where the person is, and Python updates the picture only after a view has
said that nobody is in it (cnn_widgets/widgets/static.py): a "left" that reaches a busy
kernel after the person came back redraws nothing. Should a view be redrawn while in use
all the same (an update from elsewhere), the new view takes the keyboard."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .jupyter import open_notebook, run_code, start_code, wait_for_output
from .test_tile_viewers import focus

CELLS = [
    "import threading, time, cnn_widgets as cw\nfrom IPython.display import update_display\nmodel = cw.load_model('fashion-cnn')",
    "maps = cw.FeatureMaps(model, 'sneaker', layer='block1_conv2')\nmaps",
]
# In 4 s, change the view from Python and send its display again: the notebook draws it anew.
REDRAW_SOON = """redrawn = threading.Event()
def redraw():
    maps.colormap = 'magma'
    data, metadata = maps._repr_mimebundle_()
    update_display(data, raw=True, metadata=metadata, display_id=f'cnn-widgets-{maps.model_id}')
    redrawn.set()
threading.Timer(4.0, redraw).start()"""


@pytest.mark.browser
def test_a_view_in_use_is_not_redrawn_and_keeps_the_keyboard_if_it_is(page, jupyter_server):
    open_notebook(page, jupyter_server, CELLS)
    viewer = wait_for_output(page, ".cw-feature-maps").first
    expect(viewer).to_have_attribute("data-tile-count", "32")

    # The person leaves the view and comes back while the kernel is busy: the view's "left"
    # reaches Python after that. Before, Python updated the saved picture at once and the
    # notebook rebuilt the view under the person's keys (a flash; the old view gone).
    start_code(page, "time.sleep(4)")  # the kernel is busy: the view's messages wait
    focus(viewer)
    viewer.evaluate("root => { root.dataset.before = 'late left'; }")
    page.keyboard.press("ArrowRight")
    page.evaluate("() => document.activeElement.blur()")  # left: the view sends "left"
    focus(viewer)  # back before the kernel read it
    page.keyboard.press("ArrowRight")
    caption = page.locator(".cw-feature-maps[data-before] .cw-caption")
    # Python's caption for filter 2 comes after the stale "left" was handled (in order).
    expect(caption).to_have_text(re.compile(r"\bfilter 2\b"), timeout=60_000)
    expect(page.locator(".jp-OutputArea-output .cw-feature-maps")).to_have_count(1)
    expect(page.locator(".cw-feature-maps[data-before]")).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(caption).to_have_text(re.compile(r"\bfilter 3\b"))

    # Left for good: the view says so when asked, and the saved picture follows (the view is redrawn).
    page.evaluate("() => document.activeElement.blur()")
    expect(page.locator(".cw-feature-maps[data-before]")).to_have_count(0, timeout=30_000)
    viewer = page.locator(".jp-OutputArea-output .cw-feature-maps")
    expect(viewer).to_have_attribute("data-filter-index", "3")

    # An update from elsewhere redraws the view while in use all the same: the new view has the keyboard.
    run_code(page, REDRAW_SOON)
    focus(viewer)
    viewer.evaluate("root => { root.dataset.before = 'redraw'; }")
    page.keyboard.press("ArrowRight")
    expect(viewer).to_have_attribute("data-filter-index", "4")
    redrawn = page.locator(".jp-OutputArea-output .cw-feature-maps:not([data-before])")
    expect(redrawn).to_have_count(1, timeout=30_000)  # the old view is gone, a new one drawn
    expect(page.locator(".cw-feature-maps[data-before]")).to_have_count(0)
    expect(redrawn.locator("select[data-trait=colormap]")).to_have_value("magma")
    expect(redrawn).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(redrawn).to_have_attribute("data-filter-index", "5")
    assert run_code(page, "print(maps.filter_index)") == "5"
