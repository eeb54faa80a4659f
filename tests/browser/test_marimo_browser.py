"""Widgets in marimo, as a person sees them: a marimo app (``marimo run``, headless)
that wraps FilterWeights in ``mo.ui.anywidget`` shows the grid of filters (a binary
PNG trait), an arrow key moves to the next filter, and the Python value follows: a
cell that reads ``widget.value`` reruns and prints the new filter index. The same app
wraps every other anywidget the package exports (FeatureMaps, ActivationMaximization,
DeepDream, GradCAM, ConvolutionExplainer, TrainingMonitor, DatasetExamples, Explorer), and
each shows a decoded picture. The arrow keys reach Python from DatasetExamples and from a view
inside the Explorer too (the Explorer draws its views from their models, got with anywidget's
``widget_manager.get_model``, which marimo has)."""
from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

pytest.importorskip("marimo", reason="marimo is an optional extra (pip install 'cnn-widgets[marimo]')")

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 120

APP = textwrap.dedent(
    '''
    import marimo

    app = marimo.App()


    @app.cell
    def _():
        import marimo as mo
        import cnn_widgets as cw
        return cw, mo


    @app.cell
    def _(cw, mo):
        weights = mo.ui.anywidget(cw.FilterWeights(cw.load_model("fashion-cnn"), layer="block1_conv1"))
        weights
        return (weights,)


    @app.cell
    def _(mo, weights):
        mo.md(f"Python sees filter_index = {weights.value['filter_index']}")
        return


    @app.cell
    def _(cw, mo):
        import torch
        model = cw.load_model("fashion-cnn")
        maps = mo.ui.anywidget(cw.FeatureMaps(model, "sneaker", layer="block1_conv1"))
        maximization = mo.ui.anywidget(cw.ActivationMaximization(model, layer="block1_conv1", filters="0-3", steps=8, size=28))
        dream = mo.ui.anywidget(cw.DeepDream(model, "sneaker", layer="block1_conv1"))
        cam = mo.ui.anywidget(cw.GradCAM(model, "sneaker"))
        conv = mo.ui.anywidget(cw.ConvolutionExplainer(model, "sneaker"))
        monitor = mo.ui.anywidget(cw.TrainingMonitor(model, "sneaker"))
        mo.vstack([maps, maximization, dream, cam, conv, monitor])
        return (model, torch)


    @app.cell
    def _(cw, mo, model, torch):
        pixels = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))
        examples = mo.ui.anywidget(cw.DatasetExamples(model, pixels, layer="block1_conv1", k=4))
        explorer = mo.ui.anywidget(cw.Explorer(model, "sneaker", dataset=pixels, layer="block1_conv1"))
        mo.vstack([examples, explorer])
        return examples, explorer


    @app.cell
    def _(examples, mo):
        mo.md(f"Python sees the examples' filter {examples.value['filter_index']}")
        return


    @app.cell
    def _(explorer, mo):
        mo.md(f"Python sees the Explorer's filter {explorer.value['filter_index']}")
        return


    if __name__ == "__main__":
        app.run()
    '''
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def marimo_app(folder: Path):
    """``marimo run`` of the app above on a free local port, without a token; stopped after."""
    path = folder / "filters.py"
    path.write_text(APP)
    port = free_port()
    log = open(folder / "marimo.log", "wb")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "MARIMO_SKIP_UPDATE_CHECK": "1", "HOME": str(folder)}
    process = subprocess.Popen(
        [sys.executable, "-m", "marimo", "run", str(path), "--headless", "--no-token", "--host", "127.0.0.1", "--port", str(port)],
        cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"marimo exited: {(folder / 'marimo.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"marimo did not answer in {START_TIMEOUT_S} s: {(folder / 'marimo.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if process.poll() is None:
            os.killpg(process.pid, 9)
            process.wait()
        log.close()


def arrow_keys_reach_python(page, artifact_path) -> None:
    """FilterWeights, DatasetExamples and the Explorer's filter-weights tab: each draws, and the right arrow moves
    its filter in Python (a cell printing the wrapped widget's value reruns)."""
    widget = page.locator(".cw-filter-weights").first  # (the Explorer below has one too)
    expect(widget).to_be_visible(timeout=120_000)
    # The grid is a PNG sent as bytes: it is drawn when the image has decoded to its size.
    # (marimo draws widgets in a shadow root: Playwright's locators reach into it, document.querySelector does not)
    grid = widget.locator("img.cw-grid")
    expect(grid).to_have_js_property("complete", True, timeout=60_000)
    assert grid.evaluate("img => img.naturalWidth") > 100  # 32 tiles of 3x3 weights, enlarged
    python = page.get_by_text("Python sees filter_index = ")
    expect(python).to_have_text("Python sees filter_index = 0", timeout=60_000)
    widget.focus()
    page.keyboard.press("ArrowRight")
    expect(python).to_have_text("Python sees filter_index = 1", timeout=60_000)
    page.keyboard.press("ArrowRight")
    expect(python).to_have_text("Python sees filter_index = 2", timeout=60_000)
    expect(widget.locator(".cw-caption")).to_contain_text("2")
    page.screenshot(path=artifact_path("marimo-filter-weights.png"), full_page=True)

    # DatasetExamples: its picture draws, and its own arrow keys move its filter in Python.
    examples = page.locator(".cw-dataset-examples").first
    examples.scroll_into_view_if_needed()
    expect(examples).to_contain_text("block1_conv1, filter 0: the 4 of 16 images", timeout=60_000)
    expect(examples.locator("img.cw-examples-picture")).to_have_js_property("complete", True)
    assert examples.locator("img.cw-examples-picture").evaluate("img => img.naturalWidth") > 100
    said = page.get_by_text("Python sees the examples' filter")
    expect(said).to_have_text("Python sees the examples' filter 0", timeout=60_000)
    examples.focus()
    page.keyboard.press("ArrowRight")
    expect(said).to_have_text("Python sees the examples' filter 1", timeout=60_000)
    expect(examples).to_contain_text("block1_conv1, filter 1: the 4 of 16 images")

    # The Explorer: its first tab (filter weights) draws, and an arrow key there is the Explorer's filter in Python.
    explorer = page.locator(".cw-explorer")
    explorer.scroll_into_view_if_needed()
    grid = explorer.locator(".cw-filter-weights img.cw-grid")
    expect(grid).to_have_js_property("complete", True, timeout=60_000)
    said = page.get_by_text("Python sees the Explorer's filter")
    expect(said).to_have_text("Python sees the Explorer's filter 0", timeout=60_000)
    explorer.locator(".cw-filter-weights").focus()
    page.keyboard.press("ArrowRight")
    expect(said).to_have_text("Python sees the Explorer's filter 1", timeout=60_000)
    page.screenshot(path=artifact_path("marimo-examples-explorer.png"), full_page=True)


def test_the_readme_marimo_lines_run():
    """The README's marimo lines, as written, outside a marimo server (no browser needed)."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("- **marimo**", 1)[1].split("- **VS Code**", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    code = "\n".join(line.strip() for line in code.splitlines())
    assert len([line for line in code.splitlines() if line]) == 3
    namespace: dict = {}
    exec(compile(code, "README.md (marimo)", "exec"), namespace)
    assert namespace["weights"].value["filter_index"] == 0
    namespace["weights"].widget.filter_index = 3
    assert namespace["weights"].value["filter_index"] == 3


# Every anywidget after FilterWeights, in the order the app shows them, with the class of its root.
WRAPPED = [("FeatureMaps", "cw-feature-maps"), ("ActivationMaximization", "cw-maximization"), ("DeepDream", "cw-deepdream"),
           ("GradCAM", "cw-gradcam"), ("ConvolutionExplainer", "cw-convolution"), ("TrainingMonitor", "cw-monitor"),
           ("DatasetExamples", "cw-dataset-examples"), ("Explorer", "cw-explorer")]

# True when the widget shows a decoded picture: an <img> decoded to a size, or a canvas with pixels of more than one colour.
SHOWS_A_PICTURE = """
(root) => {
  for (const img of root.querySelectorAll('img')) if (img.complete && img.naturalWidth > 0 && img.getClientRects().length) return true;
  for (const canvas of root.querySelectorAll('canvas')) {
    if (!canvas.width || !canvas.height) continue;
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 4; i < data.length; i += 4)
      if (data[i] !== data[0] || data[i + 1] !== data[1] || data[i + 2] !== data[2] || data[i + 3] !== data[3]) return true;
  }
  return false;
}
"""


def every_widget_shows_a_picture(page, artifact_path) -> None:
    """Every wrapped widget shows a decoded picture; every tab of the Explorer draws its view."""
    # Each widget's root; the Explorer holds widgets of its own, drawn after it (its first tab: filter weights).
    widgets = page.locator(".cw-widget:not(.cw-explorer .cw-widget)")
    expect(widgets).to_have_count(1 + len(WRAPPED), timeout=180_000)
    for index, (name, root_class) in enumerate(WRAPPED, start=1):
        widget = widgets.nth(index)
        expect(widget, name).to_have_class(re.compile(rf"\b{root_class}\b"))
        if name == "ActivationMaximization":  # its images are made on Run (8 steps at 28 px here)
            widget.locator("button.cw-run").click()
        widget.scroll_into_view_if_needed()
        page.wait_for_function(SHOWS_A_PICTURE, arg=widget.element_handle(), timeout=120_000)
    page.screenshot(path=artifact_path("marimo-every-widget.png"), full_page=True)
    # (DatasetExamples and the Explorer were ipywidgets VBoxes until 2026-12-01: marimo showed "No ESM spec" instead.)
    expect(page.get_by_text("No ESM spec for model")).to_have_count(0)
    # Every tab of the Explorer draws its view from its model; the last, the unit view, with its four panels.
    explorer = page.locator(".cw-explorer")
    for tab in ("Feature maps", "Maximization", "DeepDream", "Heatmaps", "Dataset examples", "Unit"):
        explorer.get_by_role("tab", name=tab).click()
    unit = explorer.locator(".cw-unit-view")
    expect(unit).to_contain_text("block1_conv1, filter 1 of 32")  # the filter the arrow key chose above
    page.wait_for_function(SHOWS_A_PICTURE, arg=unit.element_handle(), timeout=60_000)
    page.screenshot(path=artifact_path("marimo-explorer-unit.png"))


# One marimo server and page for both parts (a server start and a page load cost more than the checks).
@pytest.mark.browser
def test_every_widget_renders_in_marimo_and_arrow_keys_reach_python(page, tmp_path, artifact_path):
    with marimo_app(tmp_path) as url:
        page.goto(url, timeout=120_000)
        arrow_keys_reach_python(page, artifact_path)
        every_widget_shows_a_picture(page, artifact_path)
