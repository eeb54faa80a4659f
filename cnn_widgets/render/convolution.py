"""Pictures for the convolution explainer: an input with its padding border, a
signed map whose pixels not yet computed are grayed out, and outlined rectangles.

Pure NumPy and Pillow, like the rest of ``render``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from cnn_widgets.render.colormaps import colorize
from cnn_widgets.render.grids import _label_font, upscale
from cnn_widgets.render.normalize import normalize

PADDING_COLOR = (200, 214, 236)  # light blue-gray: clearly not part of the image
NOT_COMPUTED = (236, 236, 236)
NOT_COMPUTED_DOT = (205, 205, 205)
OUTLINE = (31, 111, 235)


def padded_picture(pixels: np.ndarray, padding: Sequence[int], scale: int) -> np.ndarray:
    """``pixels`` (H, W, 3) uint8 surrounded by ``padding`` (top, bottom, left, right)
    pixels of :data:`PADDING_COLOR`, enlarged ``scale`` times.

    >>> padded_picture(np.zeros((2, 2, 3), np.uint8), (1, 1, 1, 1), 2).shape
    (8, 8, 3)
    """
    top, bottom, left, right = padding
    height, width = pixels.shape[:2]
    canvas = np.empty((height + top + bottom, width + left + right, 3), np.uint8)
    canvas[:] = PADDING_COLOR
    canvas[top : top + height, left : left + width] = pixels
    return upscale(canvas, scale) if scale > 1 else canvas


def signed_map(values: np.ndarray, limit: float, computed: np.ndarray | None, scale: int) -> np.ndarray:
    """A signed map (H, W) in the diverging colormap over ``-limit..limit`` (blue negative,
    white 0, red positive), enlarged ``scale`` times; pixels where ``computed`` is False
    are light gray with a dot, so they read as "not computed yet".

    >>> picture = signed_map(np.array([[-1.0, 1.0]]), 1.0, np.array([[True, False]]), 4)
    >>> picture.shape, picture[0, 0].tolist() != picture[0, 4].tolist()
    ((4, 8, 3), True)
    """
    limit = float(limit) if limit > 0 else 1.0
    picture = colorize(normalize(values, mode="fixed", vrange=(-limit, limit)), "diverging")
    if computed is not None:
        picture[~computed] = NOT_COMPUTED
    picture = upscale(picture, scale) if scale > 1 else picture
    if computed is not None and scale >= 4:
        dots = np.kron(~computed, _dot(scale)).astype(bool)
        picture[dots] = NOT_COMPUTED_DOT
    return picture


def _dot(scale: int) -> np.ndarray:
    cell = np.zeros((scale, scale), np.uint8)
    middle = scale // 2
    size = max(1, scale // 6)
    cell[middle - size // 2 : middle - size // 2 + size, middle - size // 2 : middle - size // 2 + size] = 1
    return cell


def outline(picture: np.ndarray, top: int, left: int, height: int, width: int, color=OUTLINE, thickness: int = 2) -> np.ndarray:
    """A copy of ``picture`` with a rectangle outlined (pixel coordinates, clipped to the picture).

    >>> outline(np.zeros((6, 6, 3), np.uint8), 1, 1, 4, 4, thickness=1)[1, 1:5, 2].tolist()
    [235, 235, 235, 235]
    """
    result = picture.copy()
    rows, cols = picture.shape[:2]
    t, l = max(0, top), max(0, left)
    b, r = min(rows, top + height), min(cols, left + width)
    if t >= b or l >= r:
        return result
    result[t : min(b, t + thickness), l:r] = color
    result[max(t, b - thickness) : b, l:r] = color
    result[t:b, l : min(r, l + thickness)] = color
    result[t:b, max(l, r - thickness) : r] = color
    return result


def text_band(lines: Sequence[str], width: int) -> np.ndarray:
    """White band with ``lines`` of text, left-aligned, ``width`` pixels wide.

    >>> one, two = text_band(["sum + bias = 1.0"], 200), text_band(["word " * 40], 200)
    >>> one.shape[1], two.shape[0] > one.shape[0]
    (200, True)
    """
    font = _label_font()
    _, top, _, bottom = font.getbbox("Ag0fy")
    line_height = int(bottom - top) + 6
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    wrapped: list[str] = []
    for line in lines:  # long lines wrap at spaces to the band's width
        words, current = str(line).split(" "), ""
        for word in words:
            candidate = f"{current} {word}" if current else word
            if current and measure.textlength(candidate, font=font) > width - 16:
                wrapped.append(current)
                candidate = "    " + word
            current = candidate
        wrapped.append(current)
    band = Image.new("RGB", (width, 8 + line_height * len(wrapped)), (255, 255, 255))
    draw = ImageDraw.Draw(band)
    for index, line in enumerate(wrapped):
        draw.text((8, 4 + index * line_height - top), line, fill=(0, 0, 0), font=font)
    return np.asarray(band).copy()
