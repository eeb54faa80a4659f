"""A widget in marimo, as a person sees it: a marimo app (``marimo run``, headless)
that wraps FilterWeights in ``mo.ui.anywidget`` shows the grid of filters (a binary
PNG trait), an arrow key moves to the next filter, and the Python value follows: a
cell that reads ``widget.value`` reruns and prints the new filter index."""
from __future__ import annotations

import contextlib
import os
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


@pytest.mark.browser
def test_filter_weights_in_marimo_renders_and_an_arrow_key_reaches_python(page, tmp_path, artifact_path):
    with marimo_app(tmp_path) as url:
        page.goto(url, timeout=120_000)
        widget = page.locator(".cw-tile-viewer")
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
