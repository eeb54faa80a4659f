"""Every notebook in notebooks/ runs top to bottom, offline, in a fresh kernel."""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

# Runs one notebook in a fresh kernel, as nbclient (and `jupyter nbconvert --execute`) does,
# and writes it with its outputs: python -c RUN NOTEBOOK FOLDER OUT.
RUN = """
import sys, nbformat
from nbclient import NotebookClient
notebook = nbformat.read(sys.argv[1], as_version=4)
client = NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}})
client.km_kwargs = {}
try:
    client.execute()
finally:
    nbformat.write(notebook, sys.argv[3])
"""


@pytest.fixture(scope="module")
def executed(request, tmp_path_factory) -> dict[Path, Future]:
    """Every selected notebook run in its own fresh kernel, two at a time: the kernels start,
    import and compute side by side on the two cores (one torch thread each, so they do not
    spin against each other). Each test waits for its own notebook."""
    selected = [item.callspec.params["path"] for item in request.session.items
                if item.module is request.module and "path" in getattr(getattr(item, "callspec", None), "params", {})]

    def run(path: Path) -> tuple[subprocess.CompletedProcess, Path]:
        folder = tmp_path_factory.mktemp(path.stem)
        out = folder / "executed.ipynb"
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        done = subprocess.run([sys.executable, "-c", RUN, str(path), str(folder), str(out)], env=env, capture_output=True, text=True, timeout=1800)
        return done, out

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {path: pool.submit(run, path) for path in selected}
        yield futures
        for future in futures.values():  # after a stop (-x, Ctrl-C), start no more notebooks
            future.cancel()


def test_there_are_notebooks():
    assert any(path.name == "quickstart.ipynb" for path in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, executed):
    committed = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in committed.cells if cell.cell_type == "code"), "commit notebooks without outputs"
    done, out = executed[path].result()
    assert done.returncode == 0, done.stderr[-5000:]
    notebook = nbformat.read(out, as_version=4)
    errors = [out for cell in notebook.cells for out in cell.get("outputs", []) if out.output_type == "error"]
    assert not errors, errors
    widgets = [out for cell in notebook.cells for out in cell.get("outputs", []) if "application/vnd.jupyter.widget-view+json" in out.get("data", {})]
    assert widgets, "the notebook should display at least one widget"
    for output in widgets:  # a saved notebook or an HTML export shows the picture where widgets cannot run
        assert "image/png" in output["data"], "every widget output carries a static PNG of what it shows"
