"""Line charts of saved pictures: the curve is drawn where its numbers say, on numbered axes."""
from __future__ import annotations

import numpy as np
import pytest

from cnn_widgets import render
from cnn_widgets.render.charts import LINE_COLORS, nice_ticks, tick_label


def _curve_pixels(chart: np.ndarray, color) -> np.ndarray:
    return np.argwhere((np.abs(chart.astype(int) - np.array(color)).sum(axis=2) < 60))


def test_a_falling_curve_is_drawn_from_the_upper_left_to_the_lower_right():
    chart = render.line_chart([("train", [0, 50, 100], [2.0, 1.0, 0.0])], title="loss", x_label="training step",
                              y_label="loss", width=320, height=200)
    pixels = _curve_pixels(chart, LINE_COLORS[0])
    pixels = pixels[pixels[:, 0] > 20]  # below the title line, whose legend uses the same colour
    assert len(pixels) > 200
    left, right = pixels[pixels[:, 1] < 100], pixels[pixels[:, 1] > 250]
    assert left[:, 0].mean() < right[:, 0].mean() - 80  # rows grow downwards: the left end is high
    empty = render.line_chart([], title="loss", x_label="training step", y_label="loss", width=320, height=200)
    assert len(_curve_pixels(empty, LINE_COLORS[0])) == 0


def test_ticks_are_round_numbers_written_with_the_decimals_their_spacing_needs():
    assert nice_ticks(0, 100, 4) == [0, 25, 50, 75, 100]
    assert [tick_label(v, 0.005) for v in nice_ticks(0.075, 0.0911, 4)] == ["0.075", "0.080", "0.085", "0.090"]
    with pytest.raises(ValueError, match="low < high"):
        nice_ticks(1.0, 1.0)
