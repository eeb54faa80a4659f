"""Every widget follows the model's weights: after an in-place change (here the first
conv layer's weights negated, as a training step or ``w.mul_(-1)`` would), the next
cell's end redraws each displayed widget, and what it then shows is exactly what a
widget made from scratch on the changed model shows, never a cached picture of the
old weights."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import cnn_widgets as cw
from cnn_widgets.widgets import static

pytestmark = pytest.mark.usefixtures("one_thread")

PNG = "image/png"


@pytest.fixture
def updates(monkeypatch):
    """The kernel's update_display, recorded (no kernel here); forgets shown widgets after."""
    calls = []
    monkeypatch.setattr("IPython.display.update_display", lambda data, **kw: calls.append((data, kw)))
    yield calls
    static._shown.clear()


def negate_first_layer(model) -> None:
    with torch.no_grad():
        model.module.features[0].weight.mul_(-1)


def shown(widget) -> None:
    """As ``display(widget)`` does: track it with its current picture."""
    data, _ = widget._repr_mimebundle_()
    static._track(widget, data.get(PNG))


def settle(widget) -> None:
    """Wait for a widget's background work, if it has any."""
    if hasattr(widget, "wait"):
        widget.wait()


MAKERS = {
    "FilterWeights": lambda model: cw.FilterWeights(model, layer="block1_conv1"),
    "FeatureMaps": lambda model: cw.FeatureMaps(model, "sneaker", layer="block1_conv2"),
    "GradCAM": lambda model: cw.GradCAM(model, "sneaker"),
    "ConvolutionExplainer": lambda model: cw.ConvolutionExplainer(model, "sneaker", position=(5, 5)),
    "ActivationMaximization": lambda model: cw.ActivationMaximization(model, layer="block1_conv2", filters="0-3", steps=4, size=32),
    "DeepDream": lambda model: cw.DeepDream(model, "sneaker", layer="block1_conv2", steps=1, frames=1),
}


@pytest.mark.parametrize("name", list(MAKERS))
def test_after_the_next_cell_a_widget_shows_the_changed_weights(name, updates):
    model = cw.load_model("fashion-cnn")
    widget = MAKERS[name](model)
    if hasattr(widget, "run"):  # an optimization shown before the change must not survive it
        widget.run(wait=True)
    settle(widget)
    before = widget.picture().copy()
    shown(widget)
    negate_first_layer(model)
    static.refresh()  # what IPython runs after every cell
    settle(widget)
    static.refresh()  # a widget that computed in the background sends its picture after the next cell
    after = widget.picture()
    assert not np.array_equal(after, before), f"{name} still shows the old weights"
    fresh = MAKERS[name](model)  # made from scratch on the changed model
    settle(fresh)
    assert np.array_equal(after, fresh.picture()), f"{name} shows something else than a new widget on the changed model"
    assert updates and updates[-1][0][PNG] == fresh._repr_mimebundle_()[0][PNG]  # the saved notebook's picture too
    widget.close()
    fresh.close()


def test_every_view_of_the_explorer_follows_the_weights(updates):
    model = cw.load_model("fashion-cnn")
    explorer = cw.Explorer(model, "bag", dataset=None)
    views = explorer.views
    for view in views:
        settle(view)
    before = {type(view).__name__: view.picture().copy() for view in views}
    shown(explorer)
    negate_first_layer(model)
    static.refresh()
    for view in views:
        settle(view)
    fresh = cw.Explorer(model, "bag", dataset=None)
    for view, new in zip(views, fresh.views):
        settle(new)
        name = type(view).__name__
        assert np.array_equal(view.picture(), new.picture()), f"the Explorer's {name} does not show the changed weights"
        if name not in ("ActivationMaximization", "DeepDream"):  # never run: placeholders and the photo, before and after
            assert not np.array_equal(view.picture(), before[name]), name
    explorer.close()
    fresh.close()


def test_an_unchanged_model_is_not_redrawn_after_a_cell(updates):
    model = cw.load_model("fashion-cnn")
    widget = cw.FeatureMaps(model, "sneaker", layer="block1_conv1")
    shown(widget)
    drawn = []
    widget.observe(lambda change: drawn.append(change), names="grid_png")
    assert static.refresh() == 0 and drawn == [] and updates == []
    widget.close()


def test_every_widget_with_a_model_can_refresh():
    """A widget class without refresh() would silently keep the old weights after a cell."""
    model = cw.load_model("fashion-cnn")
    for name in ("FilterWeights", "FeatureMaps", "GradCAM", "ConvolutionExplainer", "ActivationMaximization", "DeepDream", "Explorer", "DatasetExamples"):
        assert callable(getattr(getattr(cw, name), "refresh", None)), name
    assert model is not None
