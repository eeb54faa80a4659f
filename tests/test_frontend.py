"""The built frontend (cnn_widgets/frontend.py): each widget shows the module and the
stylesheet esbuild built from js/, follows those files as anywidget's hot reload needs,
and a missing build says how to make it. The JavaScript itself is tested by vitest
(js/tests/, `npm test`) and in real browsers (tests/browser/)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import cnn_widgets as cw
from cnn_widgets import frontend
from cnn_widgets.frontend import bundled

WIDGETS = {
    "filter_weights": lambda model: cw.FilterWeights(model),
    "feature_maps": lambda model: cw.FeatureMaps(model, "sneaker"),
    "maximization": lambda model: cw.ActivationMaximization(model),
    "deepdream": lambda model: cw.DeepDream(model, "sneaker"),
    "gradcam": lambda model: cw.GradCAM(model, "sneaker"),
    "convolution": lambda model: cw.ConvolutionExplainer(model, "sneaker"),
    "examples": lambda model: cw.DatasetExamples(model, torch.rand(4, 1, 28, 28), k=1),
    "unit": lambda model: cw.widgets.UnitView(model, "sneaker"),
    "explorer": lambda model: cw.Explorer(model, "sneaker", dataset=None),
}


@pytest.mark.parametrize("name", WIDGETS)
def test_each_widget_carries_its_own_built_module_and_stylesheet(fashion, name):
    widget = WIDGETS[name](fashion)
    assert widget._esm == bundled(f"{name}.js").read_text()
    assert widget._css == bundled(f"{name}.css").read_text()
    assert "// js/common.js" in widget._esm and "export {" in widget._esm  # helpers bundled in, not prepended
    assert "sourceMappingURL=data:application/json;base64," in widget._esm


def test_a_widget_follows_its_module_file_as_hot_reload_needs(fashion):
    """With ANYWIDGET_HMR=1 anywidget watches the file ``_esm`` names and announces each
    change; every live widget of the class then gets the new module."""
    watched = cw.FeatureMaps._esm  # anywidget's FileContents for cnn_widgets/bundle/feature_maps.js
    maps = cw.FeatureMaps(fashion, "sneaker")
    built = maps._esm
    try:
        watched.changed.emit("export default { render() {} }")
        assert maps._esm == "export default { render() {} }"
    finally:
        watched.changed.emit(built)
    assert maps._esm == built


def test_an_unknown_file_names_the_built_ones():
    with pytest.raises(ValueError, match=r"filename must be one of .*'gradcam.js'.*got 'gradcam.ts'"):
        bundled("gradcam.ts")


def test_an_unbuilt_frontend_says_how_to_build_it(tmp_path, monkeypatch):
    monkeypatch.setattr(frontend, "BUNDLE", tmp_path / "bundle")
    with pytest.raises(FileNotFoundError, match=r"not built .*npm ci && npm run build"):
        bundled("gradcam.js")


def test_nothing_is_fetched_from_the_network_and_no_notebook_extension_is_needed():
    """What VS Code and Colab need (README, "Where the widgets run"): every built module and
    stylesheet names no http(s) address but the SVG namespace (an identifier, never fetched),
    imports nothing from outside itself, and neither does the widgets' Python; every widget's
    model is anywidget's own (no nbextension or JupyterLab extension of ours to install)."""
    built = sorted(frontend.BUNDLE.glob("*.*"))
    assert {path.suffix for path in built} == {".js", ".css"}
    for path in built:
        text = path.read_text()
        addresses = set(re.findall(r"https?://[^\s\"'`)]+", text))
        assert addresses <= {"http://www.w3.org/2000/svg"}, (path.name, addresses)
        assert not re.search(r"^\s*import\s[^;]*\sfrom\s|\bimport\(\s*[\"']|@import\s", text, re.M), f"{path.name} imports a file at run time"
    sources = sorted(Path(cw.widgets.__file__).parent.glob("*.py")) + [Path(frontend.__file__)]
    for path in sources:
        assert not re.search(r"https?://", path.read_text()), f"{path.name} names a web address"
    for widget_class in (cw.FilterWeights, cw.FeatureMaps, cw.ActivationMaximization, cw.DeepDream, cw.GradCAM,
                         cw.ConvolutionExplainer, cw.TrainingMonitor, cw.DatasetExamples, cw.Explorer, cw.widgets.UnitView):
        assert widget_class._model_module.default_value == "anywidget", widget_class.__name__
        assert widget_class._view_module.default_value == "anywidget", widget_class.__name__
