"""Line charts with numbered axes, for saved pictures of curves (a training run's loss and accuracy).

Pillow only, like the rest of render: the browser draws the live curves, and
:func:`line_chart` draws the same numbers into a picture for a saved notebook or page.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from cnn_widgets.render.grids import _label_extent, _label_font

# Train, validation, then more: dark enough to read on white, told apart without colour too (see legend).
LINE_COLORS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189))


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round numbers (1, 2, 2.5 or 5 times a power of ten apart) from
    ``low`` to ``high``, both ends included when they are round, each rounded to the
    decimals its spacing needs.

    >>> nice_ticks(0.0, 2.31)
    [0.0, 0.5, 1.0, 1.5, 2.0]
    >>> nice_ticks(0, 47, 4)
    [0, 20, 40]
    """
    low, high = float(low), float(high)
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        raise ValueError(f"ticks need finite low < high, got ({low}, {high})")
    step = tick_step(high - low, count)
    decimals = tick_decimals(step)
    first = math.ceil(low / step - 1e-9)
    ticks = []
    k = first
    while k * step <= high + 1e-9 * step:
        ticks.append(round(k * step, decimals))
        k += 1
    return ticks


def tick_step(span: float, count: int) -> float:
    """The round spacing (1, 2, 2.5 or 5 x 10^k) that cuts ``span`` into at most about ``count`` parts.

    >>> tick_step(0.0161, 4), tick_step(47, 4)
    (0.005, 20)
    """
    raw = span / max(1, count)
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * power >= raw * (1 - 1e-9):
            step = factor * power
            return int(round(step)) if step >= 1 and float(step).is_integer() else float(f"{step:.3g}")
    return 10 * power  # pragma: no cover


def tick_decimals(step: float) -> int:
    """How many decimals the multiples of ``step`` need to be told apart (0 for whole numbers).

    >>> tick_decimals(0.25), tick_decimals(0.005), tick_decimals(20)
    (2, 3, 0)
    """
    for decimals in range(0, 12):
        if abs(round(step, decimals) - step) <= 1e-9 * abs(step):
            return decimals
    return 12  # pragma: no cover


def tick_label(value: float, step: float) -> str:
    """``value`` written with the decimals its tick ``step`` needs ("0" for zero, no "-0").

    >>> tick_label(0.30000000000000004, 0.1), tick_label(-0.0, 0.5), tick_label(1500.0, 500)
    ('0.3', '0', '1500')
    """
    text = f"{value:.{tick_decimals(step)}f}"
    return "0" if float(text) == 0 else text


def line_chart(lines: Sequence[tuple[str, Sequence[float], Sequence[float | None]]], *, title: str,
               x_label: str, y_label: str, width: int = 320, height: int = 200,
               y_range: tuple[float, float] | None = None, marker: float | None = None) -> np.ndarray:
    """A uint8 (height, width, 3) picture of ``lines`` (name, xs, ys; a None y is a gap):
    ``title`` on top, a legend naming each line in its colour, a y axis with round numbers
    (``y_range`` or the data's range) named ``y_label``, an x axis with round numbers named
    ``x_label`` (its units, e.g. "training step"), and a dashed vertical line at ``marker``
    (the step a picture beside it shows). Lines with no numbers are left out of the legend.

    >>> chart = line_chart([("train", [0, 1, 2], [2.3, 1.1, 0.7])], title="loss", x_label="step", y_label="loss")
    >>> chart.shape
    (200, 320, 3)
    """
    font = _label_font()
    top, bottom = _label_extent()
    line_height = bottom - top + 4
    picture = Image.new("RGB", (int(width), int(height)), (255, 255, 255))
    draw = ImageDraw.Draw(picture)
    drawn = [(name, np.asarray(xs, float), np.asarray([np.nan if y is None else y for y in ys], float))
             for name, xs, ys in lines]
    drawn = [(name, xs, ys, LINE_COLORS[i % len(LINE_COLORS)]) for i, (name, xs, ys) in enumerate(drawn)
             if np.isfinite(ys).any()]
    draw.text((0, -top), title, fill=(0, 0, 0), font=font)
    legend_x = width
    for name, _, _, color in reversed(drawn):  # right-aligned on the title's line
        legend_x -= draw.textlength(name, font=font) + 18
        draw.line([(legend_x, line_height // 2), (legend_x + 12, line_height // 2)], fill=color, width=2)
        draw.text((legend_x + 15, -top), name, fill=color, font=font)
    xs_all = np.concatenate([xs[np.isfinite(ys)] for _, xs, ys, _ in drawn]) if drawn else np.zeros(0)
    ys_all = np.concatenate([ys[np.isfinite(ys)] for _, _, ys, _ in drawn]) if drawn else np.zeros(0)
    x_low, x_high = (0.0, float(xs_all.max())) if xs_all.size else (0.0, 1.0)
    if marker is not None:
        x_high = max(x_high, float(marker))
    x_high = x_high if x_high > x_low else x_low + 1.0
    if y_range is not None:
        y_low, y_high = map(float, y_range)
    elif ys_all.size:
        y_low, y_high = min(0.0, float(ys_all.min())), float(ys_all.max())
    else:
        y_low, y_high = 0.0, 1.0
    y_high = y_high if y_high > y_low else y_low + 1.0
    y_step = tick_step(y_high - y_low, 4)
    y_ticks = nice_ticks(y_low, y_high, 4)
    x_step = tick_step(x_high - x_low, 4)
    x_ticks = nice_ticks(x_low, x_high, 4)
    y_texts = [tick_label(v, y_step) for v in y_ticks]
    left = int(line_height + 4 + max(draw.textlength(t, font=font) for t in y_texts) + 6)
    plot_top, plot_bottom = line_height + 6, int(height - 2 * line_height - 6)
    plot_right = int(width - 1 - draw.textlength(tick_label(x_ticks[-1], x_step), font=font) / 2)
    if plot_bottom - plot_top < 20 or plot_right - left < 40:
        raise ValueError(f"a line chart of {width}x{height} pixels has no room for its axes: make it larger")

    def to_x(value):
        return left + (value - x_low) / (x_high - x_low) * (plot_right - left)

    def to_y(value):
        return plot_bottom - (value - y_low) / (y_high - y_low) * (plot_bottom - plot_top)

    for value, text in zip(y_ticks, y_texts):
        y = to_y(value)
        draw.line([(left, y), (plot_right, y)], fill=(232, 232, 232))
        draw.line([(left - 3, y), (left, y)], fill=(0, 0, 0))
        draw.text((left - 5 - draw.textlength(text, font=font), y - (bottom + top) / 2), text, fill=(0, 0, 0), font=font)
    for value in x_ticks:
        x = to_x(value)
        text = tick_label(value, x_step)
        draw.line([(x, plot_bottom), (x, plot_bottom + 3)], fill=(0, 0, 0))
        draw.text((x - draw.textlength(text, font=font) / 2, plot_bottom + 4 - top), text, fill=(0, 0, 0), font=font)
    draw.line([(left, plot_top), (left, plot_bottom), (plot_right, plot_bottom)], fill=(0, 0, 0))
    x_name_width = draw.textlength(x_label, font=font)
    draw.text(((left + plot_right - x_name_width) / 2, plot_bottom + 4 + line_height - top), x_label, fill=(0, 0, 0), font=font)
    # The y axis's name, turned a quarter left, beside its numbers.
    name_box = Image.new("RGB", (int(draw.textlength(y_label, font=font)) + 2, line_height), (255, 255, 255))
    ImageDraw.Draw(name_box).text((1, 2 - top), y_label, fill=(0, 0, 0), font=font)
    turned = name_box.rotate(90, expand=True)
    picture.paste(turned, (0, max(plot_top, int((plot_top + plot_bottom - turned.height) / 2))))
    if marker is not None:
        x = to_x(float(marker))
        for y in range(plot_top, plot_bottom, 6):
            draw.line([(x, y), (x, min(y + 3, plot_bottom))], fill=(110, 110, 110))
    for _, xs, ys, color in drawn:
        finite = np.isfinite(ys)
        points = [(to_x(x), to_y(y)) if ok else None for x, y, ok in zip(xs, ys, finite)]
        run: list = []
        for point in points + [None]:
            if point is None:
                if len(run) > 1:
                    draw.line(run, fill=color, width=2, joint="curve")
                elif len(run) == 1:
                    x, y = run[0]
                    draw.ellipse([(x - 2, y - 2), (x + 2, y + 2)], fill=color)
                run = []
            else:
                run.append(point)
    return np.asarray(picture)
