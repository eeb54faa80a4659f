"""Widget traits a frontend can set take only what they offer: ``sample`` is a
shipped sample's name, never a path or URL; ActivationMaximization's default
filters fit any layer, however few filters it has (so the Explorer's does too)."""
from __future__ import annotations

import pytest
import torch
import traitlets
from torch import nn

import cnn_widgets as cw


@pytest.mark.parametrize("widget", [cw.FeatureMaps, cw.GradCAM, cw.DeepDream])
@pytest.mark.parametrize("value", ["http://127.0.0.1:9/x.png", "/etc/passwd", "Sneaker.png"])
def test_sample_takes_only_sample_names(fashion, widget, value):
    view = widget(fashion, "sneaker")
    with pytest.raises(traitlets.TraitError, match=r"unknown sample .*Valid choices: cat, coffee, .*ankle_boot"):
        view.sample = value
    assert view.sample == "sneaker" and view.image_name.startswith("sneaker#")
    view.sample = "sandal"
    assert view.image_name.startswith("sandal#")


class LeNet(nn.Module):
    """LeNet-5: 6 and 16 filters."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(16 * 4 * 4, 10))

    def forward(self, x):
        return self.head(self.features(x))


def test_default_filters_fit_a_layer_with_fewer_than_16(one_thread):
    torch.manual_seed(0)
    model = cw.load_model(LeNet(), input_size=(1, 28, 28))
    widget = cw.ActivationMaximization(model, steps=2)
    assert widget.filters == "0-5"
    widget.run(wait=True)
    assert widget.status.startswith("done") and len(widget.tile_order) == 6
    assert cw.ActivationMaximization(model, layer="features.3", steps=2).filters == "0-15"
    explorer = cw.Explorer(model, cw.sample_image("sneaker"))
    assert explorer.maximization.filters == "0-5"
