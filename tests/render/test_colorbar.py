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


def _number_runs(picture: np.ndarray, thickness: int = 12) -> list[tuple[int, int]]:
    """The (first, last) columns of each group of dark pixels in the numbers' row under the
    ramp, groups being at least 4 white columns apart (letters of one number are closer)."""
    from cnn_widgets.render.grids import _label_extent

    top, bottom = _label_extent()
    row = picture[thickness + 3 : thickness + 3 + bottom - top + 2]
    inked = np.flatnonzero((row.min(axis=2) < 128).any(axis=0))
    runs, start = [], inked[0]
    for previous, column in zip(inked, inked[1:]):
        if column - previous > 4:
            runs.append((start, previous))
            start = column
    return runs + [(start, inked[-1])]


@pytest.mark.parametrize("low, high", [(-0.422, 0.25), (0.075, 0.0911), (0.0, 0.0911), (-0.333, 0.333), (-0.422, 0.422)])
@pytest.mark.parametrize("length", [160, 224])
def test_the_numbers_under_a_narrow_colorbar_never_run_together(low, high, length):
    # Saved pictures read "-0.422-0.25" and "0.0750.0911": an end's number, kept inside the bar,
    # was drawn over its neighbour's. Now each drawn number stands apart, and both ends and zero stay.
    scale = render.colorbar_scale(low, high, "diverging")
    picture = render.colorbar(scale, length=length)
    shown = render.readable_ticks(scale, length)
    runs = _number_runs(picture)
    assert len(runs) == len(shown) >= 2
    widest = max(len(tick["label"]) for tick, _ in shown) * 7  # no digit of the labels' font is 7 pixels wide
    assert all(last - first < widest for first, last in runs)
    labels = [tick["label"] for tick, _ in shown]
    assert labels[0] == scale["ticks"][0]["label"] and labels[-1] == scale["ticks"][-1]["label"]
    assert low >= 0 or "0" in labels
