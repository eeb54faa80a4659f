"""Widgets in pages without Jupyter: ``save_html`` snapshots and notebooks exported
to HTML with their widgets. What the pages look like in a browser is checked in
tests/browser/test_static_pages_browser.py."""
from __future__ import annotations

import json
import os
import re

import nbformat
import pytest
from nbclient import NotebookClient

import cnn_widgets as cw
from cnn_widgets import cli
from cnn_widgets.export import STATIC_MIME, VIEW_MIME

pytestmark = pytest.mark.usefixtures("one_thread")


def saved_specs(page: str) -> list[dict]:
    pattern = rf'<script type="{re.escape(STATIC_MIME)}">(.*?)</script>'
    return [json.loads(text.replace("<\\/", "</")) for text in re.findall(pattern, page, re.S)]


def fetches_nothing(page: str) -> bool:
    return not re.search(r'<(script|link|img)[^>]+(src|href)="https?:', page)


def test_save_html_embeds_the_widget_as_it_is_now(fashion, tmp_path):
    maps = cw.FeatureMaps(fashion, "sneaker", layer="block2_conv1")
    maps.filter_index = 9
    page = maps.save_html(tmp_path / "maps.html").read_text()
    (spec,) = saved_specs(page)
    assert spec["state"]["layer"] == "block2_conv1" and spec["state"]["filter_index"] == 9
    assert spec["state"]["tile_png"]["$bytes"]  # pictures travel inside the page
    assert "function tileViewer" in spec["esm"] and ".cw-widget" in spec["css"]
    assert "cnnWidgetsStatic" in page and fetches_nothing(page)


def test_an_explorer_is_saved_as_one_section_per_tab(fashion, tmp_path):
    explorer = cw.Explorer(fashion, "bag", dataset=fashion_images(60))
    explorer.examples.wait()
    explorer.layer, explorer.filter_index = "block2_conv1", 3
    page = explorer.save_html(tmp_path / "explorer.html").read_text()
    titles = ["Filter weights", "Feature maps", "Maximization", "DeepDream", "Heatmaps", "Dataset examples", "Unit"]
    assert re.findall(r'<h2 class="cw-static-heading">(.*?)</h2>', page) == titles
    specs = saved_specs(page)  # the seven views, each an anywidget (the dataset examples and the unit view became ones)
    assert len(specs) == 7 and [spec["state"].get("layer") for spec in specs[:4]] == ["block2_conv1"] * 4
    assert specs[1]["state"]["filter_index"] == 3
    assert specs[5]["state"]["caption"].startswith("block2_conv1, filter 3: the 9 of 60 images") and specs[5]["state"]["examples_png"]["$bytes"]
    assert page.count("cnnWidgetsStatic = {") == 1  # the page's script, once


def fashion_images(count: int):
    from cnn_widgets.models.datasets import load_fashion_mnist

    return load_fashion_mnist("test")[0][:count]


def test_dataset_examples_are_saved_as_a_live_snapshot_with_their_picture_inside(fashion, tmp_path):
    examples = cw.DatasetExamples(fashion, fashion_images(40), layer="block1_conv1", k=4)
    examples.wait()
    page = cw.save_html(tmp_path / "examples.html", examples).read_text()
    [spec] = saved_specs(page)
    assert spec["state"]["examples_png"]["$bytes"] and len(spec["state"]["example_lines"]) == 4
    assert "cw-dataset-examples" in spec["esm"] and fetches_nothing(page)


def test_bad_input_names_the_choices_and_writes_nothing(fashion, tmp_path):
    target = tmp_path / "page.html"
    target.write_text("keep me")
    with pytest.raises(ValueError, match="at least one widget"):
        cw.save_html(target)
    with pytest.raises(TypeError, match="FeatureMaps"):
        cw.save_html(target, object())
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cw.save_html(tmp_path / "missing" / "page.html", cw.FilterWeights(fashion))
    assert target.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.html"]  # no temporary files left


CELLS = [
    "import cnn_widgets as cw\nmodel = cw.load_model('fashion-cnn')",
    "maps = cw.FeatureMaps(model, 'sneaker', layer='block1_conv2')\nmaps",
    "maps.layer = 'block2_conv1'\nmaps.filter_index = 7",
    "explorer = cw.Explorer(model, 'bag', dataset=None)\nexplorer",
    "import ipywidgets\nipywidgets.IntSlider(3)",
]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """A notebook run headless, as `jupyter nbconvert --execute` runs it (widget state saved)."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in CELLS])
    NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
    path = tmp_path_factory.mktemp("export") / "lesson.ipynb"
    nbformat.write(notebook, path)
    return path


def test_an_exported_notebook_shows_each_widget_as_it_was_last(executed):
    before = executed.read_bytes()
    page = cw.export_notebook_html(executed).read_text()
    assert executed.read_bytes() == before  # the notebook itself is left alone
    spec, *explorer_tabs = saved_specs(page)  # the anywidgets, from their saved state
    assert spec["state"]["layer"] == "block2_conv1" and spec["state"]["filter_index"] == 7
    assert len(explorer_tabs) == 6  # the Explorer's views, the unit view included (tested more below)
    assert page.count('class="cw-static-fallback"') == 1  # the FeatureMaps output's PNG, until its script runs
    assert VIEW_MIME in page  # the IntSlider still needs ipywidgets' renderer
    notebook = nbformat.read(executed, as_version=4)
    rewritten = cw.export.embed_static_widgets(notebook)
    assert rewritten == 2
    views = [out for cell in notebook.cells for out in cell.get("outputs", []) if VIEW_MIME in out.get("data", {})]
    assert len(views) == 1 and "widgets" in notebook.metadata  # only the slider keeps the state


def test_without_other_widgets_the_page_loads_no_widget_renderer(executed, tmp_path):
    notebook = nbformat.read(executed, as_version=4)
    notebook.cells = notebook.cells[:4]
    path = tmp_path / "no-slider.ipynb"
    nbformat.write(notebook, path)
    page = cw.export_notebook_html(path, tmp_path / "page.html").read_text()
    assert "html-manager" not in page and VIEW_MIME not in page


def test_the_cli_exports_a_notebook(executed, tmp_path, capsys):
    assert cli.main(["html", str(executed), "--out", str(tmp_path / "lesson.html")]) == 0
    assert "wrote" in capsys.readouterr().out and (tmp_path / "lesson.html").stat().st_size > 10_000
    assert cli.main(["html", str(tmp_path / "missing.ipynb")]) == 2
    assert "is not a notebook file" in capsys.readouterr().err
    assert cli.main(["html", str(executed), "--out", str(executed)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err


def test_pages_get_ordinary_file_permissions(fashion, tmp_path):
    page = cw.save_html(tmp_path / "page.html", cw.FilterWeights(fashion))
    mask = os.umask(0)
    os.umask(mask)
    assert page.stat().st_mode & 0o777 == 0o666 & ~mask  # readable by a web server, like any file


def test_an_exported_explorer_shows_each_tab_from_its_saved_state(tmp_path):
    cells = [
        "import cnn_widgets as cw\nfrom cnn_widgets.models.datasets import load_fashion_mnist\nmodel = cw.load_model('fashion-cnn')",
        "explorer = cw.Explorer(model, 'bag', dataset=load_fashion_mnist('test')[0][:50])\nexplorer",
        "explorer.examples.wait()\nexplorer.layer, explorer.filter_index = 'block2_conv2', 4",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
    nbformat.write(notebook, tmp_path / "explorer.ipynb")
    page = cw.export_notebook_html(tmp_path / "explorer.ipynb").read_text()
    titles = ["Filter weights", "Feature maps", "Maximization", "DeepDream", "Heatmaps", "Dataset examples", "Unit"]
    assert re.findall(r'<h3 class="cw-static-heading">(.*?)</h3>', page) == titles
    specs = saved_specs(page)  # the Explorer's seven views, each an anywidget
    assert len(specs) == 7 and all(spec["state"].get("layer") == "block2_conv2" for spec in specs[:4])
    assert "<b>block2_conv2 · 64 · 14×14</b>" in page  # the layer strip, with the chosen layer
    assert specs[5]["state"]["caption"].startswith("block2_conv2, filter 4: the 9 of 50 images")  # dataset examples
    assert VIEW_MIME not in page
