"""Words and numbers drawn into saved pictures, as the live view writes them on the page.

A saved picture (``picture()``, ``save_png``, a notebook's static PNG) must say what the
live view says: :func:`caption` draws a view's caption lines, :func:`kernel_tables` the
numbers of a small kernel on the colour each has in the picture, formatted as the page
formats them (:func:`format_weight`, ``formatWeight`` in js/kernel_numbers.js), in black
or white by the same contrast rule (``textColorOn`` there), and :func:`stacked` puts
pictures one under another.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from cnn_widgets.render._arrays import as_uint8_array
from cnn_widgets.render.colorbar import _wrapped
from cnn_widgets.render.grids import _label_extent, _label_font

CAPTION_INK = (60, 60, 60)
_CELL_PAD = 4  # pixels around a number in its cell


def format_weight(value: float) -> str:
    """A weight as a person reads it, exactly as the live view writes it: three significant
    digits, no exponent for usual weights.

    >>> [format_weight(v) for v in (0.263693988, -0.0102379, 0.0, 2.5e-6, 12.0)]
    ['0.264', '-0.0102', '0', '2.5e-6', '12']
    """
    value = float(value)
    if value == 0:
        return "0"
    if 0.001 <= abs(value) < 1000:
        return f"{float(f'{value:.3g}'):.15g}"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent):+d}"


def text_color_on(background: str) -> tuple[int, int, int]:
    """Black or white, whichever has the higher WCAG contrast on a "#rrggbb" background.

    >>> text_color_on("#f7f7f7"), text_color_on("#053061")
    ((0, 0, 0), (255, 255, 255))
    """
    def linear(channel: float) -> float:
        return channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(int(background[at : at + 2], 16) / 255) for at in (1, 3, 5))
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return (0, 0, 0) if (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) else (255, 255, 255)


def caption(text: str, width: int, ink: Sequence[int] = CAPTION_INK) -> np.ndarray:
    """``text`` drawn as a uint8 (H, ``width``, 3) picture on white, wrapped between words
    (an empty text gives a picture 0 pixels high).

    >>> caption("filter 2 of 32 · after ReLU", 200).shape[1]
    200
    >>> caption("", 200).shape
    (0, 200, 3)
    """
    font = _label_font()
    top, bottom = _label_extent()
    line = bottom - top + 4
    lines = _wrapped(text or "", width, font)
    picture = Image.new("RGB", (width, line * len(lines)), (255, 255, 255))
    draw = ImageDraw.Draw(picture)
    for i, words in enumerate(lines):
        draw.text((0, line * i + 2 - top), words, fill=tuple(ink), font=font)
    return np.asarray(picture)


def kernel_tables(cells: list[dict], width: int) -> np.ndarray:
    """The tables of :func:`cnn_widgets.render.kernel_cells` drawn as the live view shows
    them: each table's label, then its numbers (:func:`format_weight`) on the colour each
    has in the picture; tables side by side, wrapped to ``width`` pixels. ``[]`` gives a
    picture 0 pixels high.

    >>> from cnn_widgets.render import kernel_cells
    >>> cells = kernel_cells(np.array([[[-1.0, 0.0], [0.5, 1.0]]]), "summary", (-1.0, 1.0))
    >>> kernel_tables(cells, 300).shape[1], kernel_tables([], 300).shape
    (300, (0, 300, 3))
    """
    font = _label_font()
    top, bottom = _label_extent()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength
    tables = []
    for table in cells:
        texts = [[format_weight(value) for value in row] for row in table["values"]]
        cell_w = max(measure(text, font=font) for row in texts for text in row) + 2 * _CELL_PAD
        cell_w = int(np.ceil(max(cell_w, bottom - top + 2 * _CELL_PAD)))
        cell_h = bottom - top + 2 * _CELL_PAD
        label = table["label"]
        label_h = bottom - top + 4
        table_w = max(cell_w * len(texts[0]), int(np.ceil(measure(label, font=font))))
        picture = Image.new("RGB", (table_w, label_h + cell_h * len(texts)), (255, 255, 255))
        draw = ImageDraw.Draw(picture)
        draw.text((0, 1 - top), label, fill=CAPTION_INK, font=font)
        for r, row in enumerate(texts):
            for c, text in enumerate(row):
                color = table["colors"][r][c]
                x, y = c * cell_w, label_h + r * cell_h
                draw.rectangle([x, y, x + cell_w - 1, y + cell_h - 1], fill=color)
                x_text = x + (cell_w - measure(text, font=font)) / 2
                draw.text((x_text, y + _CELL_PAD - top), text, fill=text_color_on(color), font=font)
        tables.append(np.asarray(picture))
    return _flow(tables, width)


def stacked(pictures: Sequence[object], gap: int = 6) -> np.ndarray:
    """Pictures one under another, left-aligned on white, ``gap`` pixels apart (pictures 0
    pixels high are left out).

    >>> stacked([np.zeros((4, 10, 3), np.uint8), np.zeros((0, 10, 3), np.uint8), np.zeros((2, 6, 3), np.uint8)]).shape
    (12, 10, 3)
    """
    parts = [as_uint8_array(picture, "picture") for picture in pictures]
    parts = [part for part in parts if part.shape[0] > 0]
    if not parts:
        return np.full((0, 0, 3), 255, np.uint8)
    width = max(part.shape[1] for part in parts)
    canvas = np.full((sum(part.shape[0] for part in parts) + gap * (len(parts) - 1), width, 3), 255, np.uint8)
    y = 0
    for part in parts:
        canvas[y : y + part.shape[0], : part.shape[1]] = part
        y += part.shape[0] + gap
    return canvas


def _flow(pictures: list[np.ndarray], width: int, gap: int = 10) -> np.ndarray:
    """Pictures left to right, starting a new row where the next would pass ``width``."""
    rows: list[list[np.ndarray]] = []
    used = 0
    for picture in pictures:
        if rows and used + gap + picture.shape[1] <= width:
            rows[-1].append(picture)
            used += gap + picture.shape[1]
        else:
            rows.append([picture])
            used = picture.shape[1]
    lines = []
    for row in rows:
        height = max(picture.shape[0] for picture in row)
        line = np.full((height, max(width, sum(p.shape[1] for p in row) + gap * (len(row) - 1)), 3), 255, np.uint8)
        x = 0
        for picture in row:
            line[: picture.shape[0], x : x + picture.shape[1]] = picture
            x += picture.shape[1] + gap
        lines.append(line)
    if not lines:
        return np.full((0, width, 3), 255, np.uint8)
    return stacked(lines, gap=gap)
