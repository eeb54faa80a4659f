"""A view the person is using is never drawn anew, and keeps the keyboard if it is.

Updating a widget's saved picture makes JupyterLab and Notebook 7 rebuild its view. The
views report where the person is, and Python updates the picture only after a view has
said that nobody is in it (cnn_widgets/widgets/static.py): a "left" that reaches a busy
kernel after the person came back redraws nothing. Should a view be redrawn while in use
all the same (an update from elsewhere), the new view takes the keyboard."""
from __future__ import annotations

import hashlib
import re

import pytest
from playwright.sync_api import expect

from .jupyter import leave_widgets, open_notebook, run_code, start_code, wait_for_output
from .test_static_pages_browser import saved_png
from .test_tile_viewers import focus

CELLS = [
    "import threading, time, cnn_widgets as cw\nfrom IPython.display import update_display\nmodel = cw.load_model('fashion-cnn')",
    "maps = cw.FeatureMaps(model, 'sneaker', layer='block1_conv2')\nmaps",
]
# Once the file `go` exists (the test writes it while the view is in use), change the view
# from Python and send its display again, from another thread: the notebook draws it anew.
REDRAW_SOON = """import pathlib
redrawn = threading.Event()
def redraw():
    while not pathlib.Path({go!r}).exists():
        time.sleep(0.05)
    maps.colormap = 'magma'
    data, metadata = maps._repr_mimebundle_()
    update_display(data, raw=True, metadata=metadata, display_id=f'cnn-widgets-{{maps.model_id}}')
    redrawn.set()
threading.Thread(target=redraw).start()"""


@pytest.mark.browser
def test_a_view_in_use_is_not_redrawn_and_keeps_the_keyboard_if_it_is(page, jupyter_server, tmp_path):
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
    redraw_now = tmp_path / "redraw-now"
    run_code(page, REDRAW_SOON.format(go=str(redraw_now)))
    focus(viewer)
    viewer.evaluate("root => { root.dataset.before = 'redraw'; }")
    page.keyboard.press("ArrowRight")
    expect(viewer).to_have_attribute("data-filter-index", "4")
    redraw_now.write_text("go")  # the view is in use: now the update from elsewhere comes
    redrawn = page.locator(".jp-OutputArea-output .cw-feature-maps:not([data-before])")
    expect(redrawn).to_have_count(1, timeout=30_000)  # the old view is gone, a new one drawn
    expect(page.locator(".cw-feature-maps[data-before]")).to_have_count(0)
    expect(redrawn.locator("select[data-trait=colormap]")).to_have_value("magma")
    expect(redrawn).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(redrawn).to_have_attribute("data-filter-index", "5")
    assert run_code(page, "print(maps.filter_index)") == "5"

    # A cell changes the view while the person is in it: the view is not drawn anew (before,
    # the saved picture was updated at once after the cell), and its saved picture is
    # brought up to date once the person leaves.
    leave_widgets(page)
    before = saved_png(page, 1)
    viewer = page.locator(".jp-OutputArea-output .cw-feature-maps")
    expect(viewer).not_to_have_attribute("data-saved-picture", re.compile("."))
    change_now = tmp_path / "change-now"
    start_code(page, f"import pathlib\nwhile not pathlib.Path({str(change_now)!r}).exists():\n    time.sleep(0.05)\nmaps.colormap = 'viridis'")
    focus(viewer)
    viewer.evaluate("root => { root.dataset.before = 'cell'; }")
    change_now.write_text("go")  # the person is in the view: now the cell changes it
    # Asked after the cell whether anyone is in it, the view says the update is owed.
    expect(viewer).to_have_attribute("data-saved-picture", "owed", timeout=60_000)
    in_use = page.locator(".cw-feature-maps[data-before=cell]")
    expect(in_use.locator("select[data-trait=colormap]")).to_have_value("viridis")
    expect(in_use).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(in_use).to_have_attribute("data-filter-index", "6")
    assert saved_png(page, 1) == before
    leave_widgets(page)
    expect(page.locator(".cw-feature-maps[data-before]")).to_have_count(0)  # drawn anew once left
    shown = run_code(page, "import hashlib\nprint(hashlib.sha256(maps._repr_mimebundle_()[0]['image/png'].encode()).hexdigest())")
    assert hashlib.sha256(saved_png(page, 1).encode()).hexdigest() == shown
