"""Colorbars: the numbers under the ramp are the data's, and zero is marked on a diverging map."""
from __future__ import annotations

import numpy as np
import pytest

from cnn_widgets import render


def test_ticks_include_both_ends_and_zero_only_for_a_diverging_colormap():
    scale = render.colorbar_scale(-0.31, 2.7, "diverging")
    assert [t["label"] for t in scale["ticks"]] == ["-0.31", "0", "1", "2", "2.7"]
    assert scale["zero"] == pytest.approx(0.31 / 3.01)
    assert render.colorbar_scale(-0.31, 2.7, "viridis")["zero"] is None


def test_value_range_includes_zero_so_a_zero_map_is_the_lowest_colour():
    maps = np.stack([np.zeros((2, 2)), np.full((2, 2), 3.0), np.full((2, 2), 4.0)])
    low, high = render.value_range(maps)
    assert (low, high) == (0.0, 4.0)
    values = render.normalize(maps, mode="fixed", vrange=(low, high))
    assert values[0].max() == 0.0 and values[2].min() == 1.0
    assert render.value_range(np.zeros((2, 2))) == (0.0, 1.0)


def test_the_drawn_colorbar_has_the_ramp_and_rejects_an_empty_range():
    picture = render.colorbar(render.colorbar_scale(0.0, 1.0, "gray", note="one scale"), length=200, colormap="gray")
    assert picture.shape[1] == 200 and picture[0, 0].tolist() == [0, 0, 0] and picture[0, -1].tolist() == [255, 255, 255]
    with pytest.raises(ValueError, match="low < high"):
        render.colorbar_scale(1.0, 1.0)
