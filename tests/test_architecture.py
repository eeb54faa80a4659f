"""The package's shape: dependencies point one way (docs/ARCHITECTURE.md), checked by the
import-linter contract in pyproject.toml; and the engine and the command line load without
anywidget or ipywidgets."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    """Run lint-imports with the project's contract on the package found under ``root``."""
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if command is None:
        pytest.fail("lint-imports is not installed: pip install 'cnn-widgets[test]' (import-linter)")
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [command, "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )


def test_import_contract_holds():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_import_contract_catches_a_relative_import_against_the_direction(tmp_path):
    """The contract reads the real module graph: a relative import from render into the
    engine (which an absolute-name check would miss) breaks it."""
    shutil.copytree(ROOT / "cnn_widgets", tmp_path / "cnn_widgets", ignore=shutil.ignore_patterns("bundle", "__pycache__", "*.pt"))
    (tmp_path / "cnn_widgets" / "render" / "leak.py").write_text("from ..engine import cam\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert "cnn_widgets.render.leak -> cnn_widgets.engine" in result.stdout


def _loaded_after(code: str) -> set[str]:
    script = code + "\nimport sys\nprint(' '.join(sorted(m for m in ('anywidget', 'ipywidgets', 'IPython', 'torchvision') if m in sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=300, check=True,
    )
    return set(result.stdout.split())


def test_engine_and_cli_load_without_the_widget_toolkits():
    assert _loaded_after("import cnn_widgets.engine") == set()
    assert _loaded_after("import cnn_widgets.cli, cnn_widgets.export, cnn_widgets.render") == set()
    # The package top keeps its names; the model and image helpers need no widgets either, and the
    # shipped model no torchvision (its import costs seconds of every command's start-up).
    assert _loaded_after("import cnn_widgets as cw; cw.load_model('fashion-cnn', weights=None); cw.sample_image; cw.save_html") == set()


def test_widget_names_load_the_widgets_on_first_use():
    assert {"anywidget", "ipywidgets"} <= _loaded_after("import cnn_widgets as cw; cw.GradCAM")
    assert _loaded_after("from cnn_widgets import *; FeatureMaps") >= {"anywidget"}
