"""Stitch many small tiles (kernels, feature maps) into one picture, like the seeds' ``stitched_filters_8x8.png``.

The layout is a contract with the browser: it receives :func:`grid_layout`'s dict
and finds the clicked tile from it, so :func:`grid` draws exactly that layout.
Tile ``i`` sits at row ``i // columns``, column ``i % columns``, with its top-left
pixel at ``x = padding + column * (tile_width + padding)`` and
``y = padding + row * (tile_height + label_height + padding)``; a tile's label,
if any, is drawn in the band of ``label_height`` pixels just below it.
"""
from __future__ import annotations

import functools
import math
import operator
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cnn_widgets.render._arrays import as_numpy, as_uint8_array

LABEL_FONT_SIZE = 10
_LABEL_MARGIN = 2


def upscale(image: object, factor: int) -> np.ndarray:
    """Enlarge an (H, W) or (H, W, C) image by an integer ``factor``, nearest neighbour.

    Every pixel becomes a ``factor`` x ``factor`` block of the same value, so a 3x3
    kernel stays nine crisp squares instead of a blur.

    >>> upscale(np.array([[1, 2]], dtype=np.uint8), 2).tolist()
    [[1, 1, 2, 2], [1, 1, 2, 2]]
    """
    factor = _positive_int(factor, "factor")
    array = as_numpy(image)
    if array.ndim not in (2, 3):
        raise ValueError(f"image must have shape (H, W) or (H, W, C), got shape {array.shape}")
    return array.repeat(factor, axis=0).repeat(factor, axis=1)


def enlarge(picture: object, target: int) -> np.ndarray:
    """Enlarge a tiny picture by the largest whole factor that keeps its longer side at most
    ``target`` pixels (nearest neighbour, so pixels stay crisp); a picture already that big is
    returned as it is.

    >>> enlarge(np.zeros((28, 28, 3), dtype=np.uint8), 256).shape
    (252, 252, 3)
    """
    array = as_numpy(picture)
    factor = max(1, int(target) // max(array.shape[:2]))
    return upscale(array, factor) if factor > 1 else array


def side_by_side(pictures: Sequence[object], gap: int = 16) -> np.ndarray:
    """uint8 RGB pictures (H, W, 3) in a row, top-aligned, ``gap`` white pixels apart, on white.

    >>> side_by_side([np.zeros((2, 3, 3), np.uint8), np.zeros((4, 1, 3), np.uint8)], gap=2).shape
    (4, 6, 3)
    """
    arrays = [as_uint8_array(picture, "picture") for picture in pictures]
    if not arrays:
        raise ValueError("side_by_side needs at least one picture")
    height = max(array.shape[0] for array in arrays)
    width = sum(array.shape[1] for array in arrays) + gap * (len(arrays) - 1)
    canvas = np.full((height, width, 3), 255, np.uint8)
    left = 0
    for array in arrays:
        canvas[: array.shape[0], left : left + array.shape[1]] = array
        left += array.shape[1] + gap
    return canvas


def tile_scale(height: int, width: int, target: int = 64) -> int:
    """The integer upscaling factor that makes the longer side of a tile about ``target`` pixels (at least 1).

    >>> tile_scale(3, 3)
    21
    >>> tile_scale(224, 224)
    1
    """
    height, width = _positive_int(height, "height"), _positive_int(width, "width")
    target = _positive_int(target, "target")
    return max(1, round(target / max(height, width)))


def grid_layout(n: int, tile_h: int, tile_w: int, columns: int | None = None, padding: int = 1,
                scale: int = 1, labels: bool = False) -> dict[str, int]:
    """Where :func:`grid` puts ``n`` tiles of ``tile_h`` x ``tile_w`` pixels (before ``scale``).

    Returns plain ints (JSON-ready): ``n``, ``columns``, ``rows``, ``tile_height`` and
    ``tile_width`` (after scaling), ``label_height`` (0 unless ``labels``), ``padding``,
    and the picture's ``height`` and ``width``. ``columns`` defaults to ceil(sqrt(n)).

    >>> layout = grid_layout(10, 3, 3, scale=4)
    >>> layout["columns"], layout["rows"], layout["tile_width"], layout["width"], layout["height"]
    (4, 3, 12, 53, 40)
    """
    n = _positive_int(n, "n (the number of tiles)")
    tile_h, tile_w = _positive_int(tile_h, "tile_h"), _positive_int(tile_w, "tile_w")
    scale = _positive_int(scale, "scale")
    padding = operator.index(padding)
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    columns = math.isqrt(n - 1) + 1 if columns is None else _positive_int(columns, "columns")
    rows = -(-n // columns)
    tile_height, tile_width = tile_h * scale, tile_w * scale
    label_height = _label_height() if labels else 0
    return {
        "n": n,
        "columns": columns,
        "rows": rows,
        "tile_height": tile_height,
        "tile_width": tile_width,
        "label_height": label_height,
        "padding": padding,
        "height": padding + rows * (tile_height + label_height + padding),
        "width": padding + columns * (tile_width + padding),
    }


def grid(tiles: object, columns: int | None = None, padding: int = 1, background: int | Sequence[int] = 255,
         scale: int = 1, labels: Sequence[str] | None = None) -> np.ndarray:
    """Stitch N tiles, (N, h, w, 3) uint8 or (N, h, w) gray, into one uint8 (H, W, 3) picture.

    Tiles fill rows left to right, ``scale`` enlarges each one (nearest neighbour),
    ``padding`` pixels of ``background`` (a gray level or an RGB triple) separate them,
    and ``labels`` (one string per tile) adds a line of text under every tile. Tiles
    should be a few dozen pixels wide for labels to fit; see :func:`tile_scale`.

    >>> tiles = np.zeros((10, 3, 3), dtype=np.uint8)
    >>> grid(tiles, scale=4).shape
    (40, 53, 3)
    >>> grid(tiles, scale=4, labels=[f"filter {i}" for i in range(10)]).shape[1]
    53
    """
    array = as_uint8_array(tiles, "tiles")
    if array.ndim == 3:
        array = array[..., np.newaxis]
    if array.ndim != 4 or array.shape[-1] not in (1, 3):
        raise ValueError(f"tiles must have shape (N, h, w, 3) or (N, h, w), got shape {array.shape}")
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    n, tile_h, tile_w = array.shape[:3]
    if labels is not None and len(labels) != n:
        raise ValueError(f"got {len(labels)} labels for {n} tiles; give one label per tile")
    layout = grid_layout(n, tile_h, tile_w, columns, padding, scale, labels=labels is not None)
    color = _background_color(background)

    if scale > 1:
        array = array.repeat(scale, axis=1).repeat(scale, axis=2)
    if labels is not None:
        bands = _label_bands(labels, layout["tile_width"], layout["label_height"], color)
        array = np.concatenate([array, bands], axis=1)

    # Each cell is a tile (and its label band) followed by the padding on its right and
    # below; laying the cells out as a (rows, columns) block and adding one padding
    # strip at the top and left gives exactly the documented offsets, with no Python loop.
    rows, cols = layout["rows"], layout["columns"]
    cell_h, cell_w = array.shape[1] + padding, array.shape[2] + padding
    cells = np.empty((rows * cols, cell_h, cell_w, 3), dtype=np.uint8)
    cells[:] = color
    cells[:n, : array.shape[1], : array.shape[2]] = array
    body = cells.reshape(rows, cols, cell_h, cell_w, 3).transpose(0, 2, 1, 3, 4).reshape(rows * cell_h, cols * cell_w, 3)
    canvas = np.empty((layout["height"], layout["width"], 3), dtype=np.uint8)
    canvas[:] = color
    canvas[padding:, padding:] = body
    return canvas


def _positive_int(value: object, what: str) -> int:
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an integer, got {value!r}") from None
    if number < 1:
        raise ValueError(f"{what} must be >= 1, got {number}")
    return number


def _background_color(background: int | Sequence[int]) -> np.ndarray:
    color = np.broadcast_to(np.asarray(background), (3,))
    if np.any(color < 0) or np.any(color > 255):
        raise ValueError(f"background must be a gray level or RGB triple in 0..255, got {background!r}")
    return color.astype(np.uint8)


@functools.lru_cache(maxsize=1)
def _label_font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=LABEL_FONT_SIZE)
    except (ImportError, OSError, TypeError):
        # Pillow without FreeType (or older than 10.1) still has a small bitmap font.
        return ImageFont.load_default()


@functools.lru_cache(maxsize=1)
def _label_extent() -> tuple[int, int]:
    # Measured on letters with ascenders and descenders so every label fits the band.
    _, top, _, bottom = _label_font().getbbox("Ag0fy")
    return int(top), int(bottom)


def _label_height() -> int:
    top, bottom = _label_extent()
    return bottom - top + 2 * _LABEL_MARGIN


def _label_bands(labels: Sequence[str], width: int, height: int, color: np.ndarray) -> np.ndarray:
    font = _label_font()
    top, _ = _label_extent()
    ink = (0, 0, 0) if color.astype(int).mean() >= 128 else (255, 255, 255)
    bands = np.empty((len(labels), height, width, 3), dtype=np.uint8)
    for index, label in enumerate(labels):
        band = Image.new("RGB", (width, height), tuple(int(c) for c in color))
        draw = ImageDraw.Draw(band)
        text = str(label)
        text_width = draw.textlength(text, font=font)
        # Centered when it fits; otherwise start at the left edge so the beginning stays readable.
        x = max(0.0, (width - text_width) / 2)
        draw.text((x, _LABEL_MARGIN - top), text, fill=ink, font=font)
        bands[index] = np.asarray(band)
    return bands
