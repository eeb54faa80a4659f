"""The quick-start notebook, opened in JupyterLab as a newcomer would: every
widget it shows renders."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import expect

from .jupyter import open_notebook, wait_for_output

QUICKSTART = Path(__file__).resolve().parents[2] / "notebooks" / "quickstart.ipynb"


@pytest.mark.browser
@pytest.mark.parametrize("frontend", ["lab"])
def test_quickstart_widgets_render_in_jupyterlab(page, jupyter_server, artifact_path):
    notebook = nbformat.read(QUICKSTART, as_version=4)
    open_notebook(page, jupyter_server, [cell.source for cell in notebook.cells if cell.cell_type == "code"], name="quickstart")
    for selector in (".cw-filter-weights", ".cw-feature-maps", ".cw-maximization", ".cw-gradcam"):
        widget = wait_for_output(page, selector).first
        expect(widget).to_be_visible()
    expect(wait_for_output(page, ".cw-maximization").first).to_have_attribute("data-tile-count", "16")
    page.screenshot(path=artifact_path("quickstart-lab.png"), full_page=True)
