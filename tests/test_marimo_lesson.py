"""A lesson opens in marimo: marimo's own converter (`marimo convert`) turns lesson 1 into a
marimo notebook, which runs to the end (`marimo export html` runs every cell and fails if
one raises), and each widget the lesson shows is a marimo anywidget on the page, with the
widget's stylesheet inside the page (nothing to fetch). README ("Where the widgets run",
marimo) says how to do this. The widgets drawing in a browser under marimo is
tests/browser/test_marimo_browser.py."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("marimo", reason="marimo is an optional extra (pip install 'cnn-widgets[marimo]')")

REPO = Path(__file__).resolve().parents[1]
LESSON = REPO / "notebooks" / "lessons" / "01_what_a_convolution_does.ipynb"


def marimo(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "MARIMO_SKIP_UPDATE_CHECK": "1", "HOME": str(cwd)}
    return subprocess.run([sys.executable, "-m", "marimo", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_lesson_1_converted_by_marimo_runs_and_shows_its_widgets(tmp_path):
    converted = marimo("convert", str(LESSON), "-o", "lesson.py", cwd=tmp_path)
    assert converted.returncode == 0, converted.stderr
    source = (tmp_path / "lesson.py").read_text()
    assert "app = marimo.App(" in source and "cw.ConvolutionExplainer(" in source
    exported = marimo("export", "html", "lesson.py", "-o", "lesson.html", cwd=tmp_path)
    assert exported.returncode == 0, f"a cell failed in marimo:\n{exported.stdout[-3000:]}\n{exported.stderr[-3000:]}"
    page = (tmp_path / "lesson.html").read_text()
    # Each code cell of the lesson that makes a ConvolutionExplainer shows it; marimo wraps each
    # displayed anywidget itself.
    shown = sum("cw.ConvolutionExplainer(" in "".join(cell["source"])
                for cell in json.loads(LESSON.read_text())["cells"] if cell["cell_type"] == "code")
    assert shown >= 2
    assert len(re.findall(r"<marimo-anywidget ", page.replace("\\u003C", "<"))) == shown
    assert ".cw-convolution" in page  # the widget's stylesheet, in the page
