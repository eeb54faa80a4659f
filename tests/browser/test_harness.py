"""The browser harness itself: a minimal anywidget shows up, reacts to a click, and
Python sees the change, in both JupyterLab and Notebook 7."""
from __future__ import annotations

import sys

import pytest
from playwright.sync_api import expect

from .jupyter import NotebookError, cell_output_text, open_notebook, run_code, wait_for_output

COUNTER_CELL = '''import anywidget
import traitlets


class Counter(anywidget.AnyWidget):
    _esm = """
    function render({ model, el }) {
      const button = document.createElement("button");
      button.className = "harness-counter";
      const show = () => { button.textContent = `count is ${model.get("count")}`; };
      const increment = () => {
        model.set("count", model.get("count") + 1);
        model.save_changes();
      };
      button.addEventListener("click", increment);
      model.on("change:count", show);
      show();
      el.appendChild(button);
      return () => model.off("change:count", show);
    }
    export default { render };
    """
    count = traitlets.Int(0).tag(sync=True)


w = Counter()
w'''


@pytest.mark.browser
def test_counter_widget_round_trip(page, jupyter_server, artifact_path):
    open_notebook(page, jupyter_server, [COUNTER_CELL])

    # The kernel is this venv's Python, so widgets see the package under test.
    assert run_code(page, "import sys; print(sys.prefix)") == sys.prefix

    button = wait_for_output(page, "button.harness-counter")
    expect(button).to_have_text("count is 0")
    for _ in range(3):  # quick clicks queue changes in the frontend; Python must still see all
        button.click()
    expect(button).to_have_text("count is 3")
    assert run_code(page, "print(w.count)") == "3"

    run_code(page, "w.count = 10")
    expect(button).to_have_text("count is 10")
    button.screenshot(path=artifact_path(f"harness-counter-{jupyter_server.frontend}.png"))
    page.screenshot(path=artifact_path(f"harness-notebook-{jupyter_server.frontend}.png"))

    with pytest.raises(NotebookError, match="ZeroDivisionError"):
        run_code(page, "1 / 0")


BROKEN_WIDGET_CELL = '''import anywidget


class Broken(anywidget.AnyWidget):
    _esm = "export default { render({ el }) { throw new Error('render failed on purpose'); } }"


Broken()'''


@pytest.mark.browser
@pytest.mark.parametrize("frontend", ["lab"])  # the error path does not depend on the frontend
def test_failures_read_as_tracebacks(page, jupyter_server):
    cells = ["x = 1", BROKEN_WIDGET_CELL, "def f():\n    return 1 / 0\n\nf()", "print('not reached')"]
    with pytest.raises(NotebookError, match=r"(?s)cell 2 raised ZeroDivisionError.*return 1 / 0") as raised:
        open_notebook(page, jupyter_server, cells)
    assert "\x1b[" not in str(raised.value), "ANSI colour codes should be stripped from tracebacks"
    assert cell_output_text(page, 3) == "", "cells after an error should not run"
    assert run_code(page, "x + 1") == "2"

    # A widget whose JavaScript throws: the timeout message carries the browser's error.
    page.wait_for_function("() => window.__cnnWidgetsConsoleErrors.some(e => e.includes('on purpose'))")
    with pytest.raises(NotebookError, match="render failed on purpose"):
        wait_for_output(page, "button", timeout=1_000)
