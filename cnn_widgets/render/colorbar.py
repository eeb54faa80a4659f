"""Colorbars: which colour means which number, for every grid and enlarged view.

:func:`colorbar_scale` decides the numbers once (range, ticks, where zero is,
colour stops); the browser draws that dict, and :func:`colorbar` draws the same
scale into a picture for saved files, so a picture and the page never disagree.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from cnn_widgets.render._arrays import as_float_array, as_uint8_array
from cnn_widgets.render.colormaps import colormap_lut
from cnn_widgets.render.grids import _label_extent, _label_font

DIVERGING = ("diverging",)  # colormaps whose middle colour means zero
_STOPS = 17


def value_range(values: object, symmetric: bool = False) -> tuple[float, float]:
    """The (low, high) a layer-wide scale spans: the data's min and max, stretched to
    include zero (so a map that is zero everywhere shows the colormap's lowest colour
    for data that is never negative), or ±max(|x|) when ``symmetric`` (zero in the middle).
    A constant zero stack gets (0, 1). NaN and infinities are ignored.

    >>> value_range(np.array([[2.0, 5.0]]))
    (0.0, 5.0)
    >>> value_range(np.array([[-1.0, 3.0]]), symmetric=True)
    (-3.0, 3.0)
    """
    array = as_float_array(values)
    finite = array[np.isfinite(array)]
    low = min(0.0, float(finite.min())) if finite.size else 0.0
    high = max(0.0, float(finite.max())) if finite.size else 0.0
    if symmetric:
        high = max(abs(low), abs(high))
        low = -high
    if high <= low:
        high = low + 1.0
    return low, high


def _nice_step(span: float, count: int) -> float:
    raw = span / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * power >= raw:
            return factor * power
    return 10 * power


def _label(value: float) -> str:
    if value == 0:
        return "0"
    return f"{value:.3g}"


def colorbar_scale(low: float, high: float, colormap: str = "gray", ticks: int = 4, note: str = "",
                   mark_zero: bool | None = None) -> dict:
    """The numbers of a colorbar from ``low`` to ``high`` under ``colormap`` (JSON-ready):
    ``low``, ``high``, ``ticks`` (value, label and position 0-1 along the bar; the ends are
    always labelled), ``zero`` (the position of zero when marked and the range holds it,
    else None; marked by default for a diverging colormap, ``mark_zero=True`` for others,
    such as the gray of a color view's weights), ``stops`` (CSS colours along the bar),
    ``colormap`` and ``note`` (a line saying what the scale means, such as "one scale for
    the whole layer").

    >>> scale = colorbar_scale(-2.0, 2.0, "diverging")
    >>> [t["label"] for t in scale["ticks"]], scale["zero"]
    (['-2', '-1', '0', '1', '2'], 0.5)
    """
    low, high = float(low), float(high)
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        raise ValueError(f"a colorbar needs finite low < high, got ({low}, {high})")
    span = high - low
    step = _nice_step(span, ticks)
    values = [low]
    value = math.ceil(low / step) * step
    while value < high - 1e-9 * span:
        if value - low > 0.4 * step:  # far enough from the end that the numbers do not overlap
            values.append(value)
        value += step
    if high - values[-1] < 0.4 * step and len(values) > 1:  # the end's number would overlap it
        values.pop()
    values.append(high)
    if mark_zero is None:
        mark_zero = colormap in DIVERGING
    diverging = mark_zero and low < 0 < high
    if diverging and all(abs(v) > 1e-9 * span for v in values):
        values = sorted(values + [0.0])
    lut = colormap_lut(colormap)
    stops = ["#%02x%02x%02x" % tuple(int(c) for c in lut[round(i * (len(lut) - 1) / (_STOPS - 1))]) for i in range(_STOPS)]
    return {
        "low": low,
        "high": high,
        "ticks": [{"value": v, "label": _label(0.0 if abs(v) <= 1e-9 * span else v), "at": (v - low) / span} for v in values],
        "zero": (0.0 - low) / span if diverging else None,
        "stops": stops,
        "colormap": colormap,
        "note": note,
    }


def class_map_scale(heat, colormap: str, units_note: str, *, top_class: str | None = None,
                    top_peak: float | None = None, own_peak: bool = False) -> dict:
    """The colorbar scale of one class's heatmap, so colours compare across the classes of
    one image: from zero to the larger of the map's peak and ``top_peak`` (the top predicted
    class's map peak; None when ``heat`` is that map), its note naming the scale
    (``top_class``, e.g. "Sneaker (97.6%)", None when unknown), then ``units_note``. With
    ``own_peak`` the map keeps its own peak and the note says not to compare colours.

    >>> scale = class_map_scale(np.array([[0.0, 0.1]]), "inferno", "logit", top_class="Sneaker (97.6%)", top_peak=0.4)
    >>> scale["high"], scale["note"]
    (0.4, 'on the scale of Sneaker (97.6%), the top class, so colours compare across classes · logit')
    """
    heat = np.asarray(heat, dtype=np.float64)
    if own_peak or top_class is None:
        low, high = value_range(heat)
        who = "its own peak: do not compare colours across classes · " if own_peak else ""
    elif top_peak is None:
        low, high = value_range(heat)
        who = f"{top_class} is the top class: the other classes are drawn on its scale, so colours compare across classes · "
    else:
        low, high = value_range(np.append(heat, top_peak))
        higher = "" if top_peak >= float(np.nanmax(heat, initial=0.0)) else " (this map peaks higher)"
        who = f"on the scale of {top_class}, the top class{higher}, so colours compare across classes · "
    return colorbar_scale(low, high, colormap, note=who + units_note)


def colorbar(scale: dict, length: int = 256, thickness: int = 12, colormap: str | None = None) -> np.ndarray:
    """Draw a :func:`colorbar_scale` as a horizontal uint8 (H, length, 3) picture: the
    colour ramp (``colormap``, by default the scale's own), a tick and number under each
    tick, a black line at zero when marked, and the note under the numbers, wrapped at
    word boundaries to the bar's length.

    >>> colorbar(colorbar_scale(0.0, 4.0, "viridis")).shape[1]
    256
    """
    font = _label_font()
    top, bottom = _label_extent()
    line = bottom - top + 4
    notes = _wrapped(scale.get("note") or "", length, font)
    height = thickness + 3 + line + line * len(notes)
    picture = Image.new("RGB", (length, height), (255, 255, 255))
    ramp = colormap_lut(colormap or scale.get("colormap", "gray"))[np.rint(np.linspace(0, 255, length)).astype(int)]
    picture.paste(Image.fromarray(np.repeat(ramp[None], thickness, axis=0)), (0, 0))
    draw = ImageDraw.Draw(picture)
    for tick, left in readable_ticks(scale, length, font):
        x = min(length - 1, round(tick["at"] * (length - 1)))
        draw.line([(x, thickness), (x, thickness + 2)], fill=(0, 0, 0))
        draw.text((left, thickness + 3 - top), tick["label"], fill=(0, 0, 0), font=font)
    if scale.get("zero") is not None:
        x = round(scale["zero"] * (length - 1))
        draw.line([(x, 0), (x, thickness - 1)], fill=(0, 0, 0))
    for i, note in enumerate(notes):
        draw.text((0, thickness + 3 + line * (1 + i) - top), note, fill=(80, 80, 80), font=font)
    return np.asarray(picture)


TICK_GAP = 6  # white pixels at least between two numbers under a colorbar


def readable_ticks(scale: dict, length: int, font=None) -> list[tuple[dict, float]]:
    """The ticks of ``scale`` whose numbers fit side by side under a bar ``length`` pixels
    long, each with the x where its number starts (centred on its tick, kept inside the
    bar): both ends first, then zero, then the others left to right, each kept only if its
    number stays ``TICK_GAP`` pixels clear of every kept one. So a narrow bar shows fewer
    numbers, never two run together (as "-0.422-0.25" did).

    >>> [t["label"] for t, _ in readable_ticks(colorbar_scale(-0.422, 0.25, "diverging"), 160)]
    ['-0.422', '-0.2', '0', '0.25']
    """
    font = font or _label_font()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength
    ticks = scale["ticks"]
    boxes = []
    for tick in ticks:
        x = min(length - 1, round(tick["at"] * (length - 1)))
        width = measure(tick["label"], font=font)
        left = min(max(0.0, x - width / 2), length - width)
        boxes.append((left, left + width))
    zero = [i for i, tick in enumerate(ticks) if tick["value"] == 0 or tick["label"] == "0"]
    order = [0, len(ticks) - 1] + zero + list(range(1, len(ticks) - 1))
    kept: list[int] = []
    for i in dict.fromkeys(order):  # each once, in that order of importance
        left, right = boxes[i]
        if all(right + TICK_GAP <= boxes[j][0] or boxes[j][1] + TICK_GAP <= left for j in kept):
            kept.append(i)
    return [(ticks[i], boxes[i][0]) for i in sorted(kept)]


def _wrapped(text: str, length: int, font) -> list[str]:
    """``text`` in lines no longer than ``length`` pixels, broken between words."""
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength
    lines: list[str] = []
    for word in text.split():
        if lines and measure(f"{lines[-1]} {word}", font=font) <= length:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


def with_colorbar(picture: object, scale: dict, colormap: str = "gray", gap: int = 6) -> np.ndarray:
    """``picture`` (uint8 RGB) with the :func:`colorbar` of ``scale`` under it, ``gap`` white
    pixels apart, as saved files show a view with its numbered scale. The bar is as long as
    the picture is wide (at least 160 pixels).

    >>> with_colorbar(np.zeros((252, 252, 3), np.uint8), colorbar_scale(0.0, 1.0, "inferno", note="logit"), "inferno").shape[1]
    252
    """
    top = as_uint8_array(picture, "picture")
    bar = colorbar(scale, length=max(160, top.shape[1]), colormap=colormap)
    width = max(top.shape[1], bar.shape[1])
    canvas = np.full((top.shape[0] + gap + bar.shape[0], width, 3), 255, np.uint8)
    canvas[: top.shape[0], : top.shape[1]] = top
    canvas[top.shape[0] + gap :, : bar.shape[1]] = bar
    return canvas
