"""Activation maximization shows what each filter wants: on the shipped model, the
image made for a filter excites that filter more than the images made for the
other filters do (compared column by column: one filter across the images, since
filters differ in scale), with the default settings."""
from __future__ import annotations

import pytest
import torch

from cnn_widgets.engine.activations import record_activations
from cnn_widgets.engine.optvis import maximize
from cnn_widgets.engine.optvis.transform import standard_transforms
from cnn_widgets.models import preserved

pytestmark = pytest.mark.usefixtures("one_thread")

FILTERS = list(range(8))
WIDGET_STEPS = 128  # the ActivationMaximization widget's default


def own_image_table(model, layer: str, images: torch.Tensor) -> torch.Tensor:
    """table[i, j]: mean conv output of filter j on image i (no transforms)."""
    info = model.layer(layer)
    with preserved(model.module, model.device), torch.no_grad():
        acts = record_activations(model, model.normalize(images), [info])[info.path]
    return acts[:, FILTERS].flatten(2).mean(2)


# The first conv is left out: its mean output is linear in the image, so its best
# image is a flat one (all dark or all light), and filters whose weights have the
# same sign share it; which of those equal images wins is rounding, not quality.
@pytest.mark.parametrize("layer", ["block1_conv2", "block2_conv1", "block2_conv2", "block3_conv1", "block3_conv2"])
def test_each_filters_own_image_excites_it_most(fashion, layer):
    images = maximize(fashion, layer, FILTERS, steps=WIDGET_STEPS)
    table = own_image_table(fashion, layer, images)
    others = table.clone()
    others.fill_diagonal_(float("-inf"))
    losing = [j for j in FILTERS if not table[j, j] > others[:, j].max()]
    assert not losing, f"{layer}: another filter's image excites filters {losing} more than their own"


def test_transforms_scale_with_the_image_and_stay_off_on_small_inputs():
    small, medium, large = (standard_transforms((s, s)) for s in (28, 64, 256))
    assert small == []
    assert [repr(t) for t in medium][:2] == ["pad(6)", "jitter(4.0)"]
    assert [repr(t) for t in large][:2] == ["pad(24)", "jitter(16.0)"]
