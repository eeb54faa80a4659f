"""Texts a user controls reach the page as text, never as HTML: a model's class
name, module names, class names, image and uploaded file names, titles and error
messages, each an ``<img src=x onerror=alert(...)>`` attack (tests/hostile_texts.py),
open no dialog and raise nothing in JupyterLab, in a ``save_html`` page and in an
exported notebook. An attack the test adds to the page itself shows that a leak
would be seen."""
from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from playwright.sync_api import expect

import cnn_widgets as cw
from hostile_texts import hostile_widgets

from .jupyter import open_notebook, run_code, wait_for_output
from .test_static_pages_browser import open_page

pytestmark = pytest.mark.browser

HOSTILE_SOURCE = (Path(__file__).parents[1] / "hostile_texts.py").read_text()
CELLS = [
    HOSTILE_SOURCE + "\nimport tempfile\nwidgets = hostile_widgets(tempfile.mkdtemp())",
    "widgets['explorer']",
    "widgets['failing']",
    "widgets['maps']",
    "widgets['heatmaps']",
]


class Watch:
    """Records the page's dialogs (dismissing them) and its uncaught errors."""

    def __init__(self, page) -> None:
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def assert_no_script_ran(self, page, ignore_errors: tuple[str, ...] = ()) -> None:
        """Add an attack of the test's own; once its dialog has come, every broken
        image already on the page has had its turn: no other dialog may have come."""
        page.evaluate("""() => document.body.insertAdjacentHTML("beforeend", '<img src=x onerror=alert("control")>')""")
        deadline = time.monotonic() + 30
        while "control" not in self.dialogs:
            assert time.monotonic() < deadline, "the control attack opened no dialog: the test cannot see leaks"
            page.wait_for_timeout(100)
        assert self.dialogs == ["control"], f"user text ran as script: {self.dialogs}"
        assert [e for e in self.errors if not any(part in e for part in ignore_errors)] == []


def shows_the_texts(page) -> None:
    """The attacks are on the page, as text."""
    expect(page.get_by_text('<img src=x onerror=alert("model class name")> · conv layers')).to_have_count(1)
    expect(page.get_by_text('features.<img src=x onerror=alert("module name")>').first).to_be_attached()


@pytest.mark.parametrize("frontend", ["lab"])
def test_user_texts_are_text_in_jupyterlab(page, jupyter_server, tmp_path):
    watch = Watch(page)
    open_notebook(page, jupyter_server, CELLS)
    wait_for_output(page, ".cw-explorer")
    for tab in ("Feature maps", "Maximization", "DeepDream", "Heatmaps", "Dataset examples", "Filter weights"):
        page.get_by_role("tab", name=tab).click()
    shows_the_texts(page)
    expect(page.get_by_text('broken dataset folder")>', exact=False).first).to_be_visible()
    # A file uploaded from the browser whose name is an attack, and which is not a picture.
    upload = tmp_path / '<img src=x onerror=alert("browser upload")>.png'
    upload.write_text("not a picture")
    maps = page.locator(".cw-feature-maps").last
    maps.locator("input[type=file]").set_input_files(str(upload))
    expect(maps.locator(".cw-error")).to_contain_text('onerror=alert("browser upload")')
    assert run_code(page, "print(widgets['maps'].error.startswith('ValueError'))") == "True"
    watch.assert_no_script_ran(page)


def test_user_texts_are_text_in_a_saved_page(page, tmp_path):
    widgets = hostile_widgets(tmp_path)
    path = cw.save_html(
        tmp_path / "page.html", widgets["explorer"], widgets["maps"], widgets["heatmaps"], title='<img src=x onerror=alert("title")>'
    )
    watch = Watch(page)
    open_page(page, path)
    expect(page.locator('.cw-static[data-rendered="true"]')).to_have_count(9)  # the Explorer's seven live tabs, the maps, the heatmaps
    expect(page.locator("h1")).to_have_text('<img src=x onerror=alert("title")>')
    expect(page.locator(".cw-gradcam").first).to_contain_text('<!--<script><img src=x onerror=alert("class name")>')
    watch.assert_no_script_ran(page)


def test_user_texts_are_text_in_an_exported_notebook(page, tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in CELLS])
    NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
    nbformat.write(notebook, tmp_path / "lesson.ipynb")
    path = cw.export_notebook_html(tmp_path / "lesson.ipynb")
    watch = Watch(page)
    page.route("http*://**", lambda route: route.abort())  # offline: nbconvert's MathJax and require.js cannot load
    open_page(page, path)
    shows_the_texts(page)
    expect(page.locator(".cw-gradcam").first).to_contain_text('<!--<script><img src=x onerror=alert("class name")>')
    watch.assert_no_script_ran(page, ignore_errors=("require is not defined", "MathJax"))

