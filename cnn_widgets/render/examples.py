"""Dataset examples as one picture: each image with its filter's activation map over it and a
box where the response peaks, in a grid (the DatasetExamples view, as in OpenAI Microscope)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from cnn_widgets.render._arrays import as_float_array, as_uint8_array
from cnn_widgets.render.grids import grid
from cnn_widgets.render.images import overlay, to_uint8_image
from cnn_widgets.render.normalize import normalize

BOX_COLOR = (0, 220, 255)


def examples_picture(
    images: object,
    maps: object,
    peaks: Sequence[tuple[int, int]],
    labels: Sequence[str] | None = None,
    size: int = 112,
    colormap: str = "inferno",
    opacity: float = 0.45,
) -> np.ndarray:
    """``images`` (k, C, H, W) in [0, 1], each shown at ``size`` x ``size`` pixels with its
    activation map (k, h, w) over it (negative values as 0, one scale for all k maps) and a
    box around ``peaks[i]`` (row, column on the map's grid); a grid of up to three columns.

    >>> images, maps = np.zeros((2, 1, 8, 8)), np.random.default_rng(0).random((2, 4, 4))
    >>> examples_picture(images, maps, [(0, 0), (3, 3)], ["#0", "#1"], size=32).shape[1]
    70
    """
    maps = np.clip(as_float_array(maps), 0.0, None)
    if maps.ndim != 3:
        raise ValueError(f"maps must have shape (k, h, w), got shape {maps.shape}")
    heat = normalize(maps, mode="layer")
    cell_height, cell_width = size / maps.shape[1], size / maps.shape[2]
    tiles = []
    for image, values, (row, column) in zip(images, heat, peaks):
        backdrop = np.asarray(Image.fromarray(to_uint8_image(image)).resize((size, size), Image.NEAREST))
        tile = Image.fromarray(overlay(backdrop, values, colormap=colormap, opacity=opacity))
        y, x = (row + 0.5) * cell_height, (column + 0.5) * cell_width
        half = max(6.0, cell_height)
        ImageDraw.Draw(tile).rectangle([x - half, y - half, x + half, y + half], outline=BOX_COLOR, width=2)
        tiles.append(np.asarray(tile))
    return grid(np.stack(tiles), columns=min(3, len(tiles)), padding=2, labels=labels)


def crops_picture(strip: object, labels: Sequence[str], size: int = 112) -> np.ndarray:
    """Crops stored side by side in one ``strip`` (H, k * w, 3) uint8, as an atlas stores a
    unit's examples, cut apart and shown in a grid of up to three columns, each enlarged
    (nearest neighbour, a whole factor) to about ``size`` pixels, with one label per crop.

    >>> crops_picture(np.zeros((10, 40, 3), dtype=np.uint8), ["a", "b", "c", "d"], size=40).shape[1]
    128
    """
    pixels = as_uint8_array(strip, "strip")
    count = len(labels)
    if pixels.ndim != 3 or count < 1 or pixels.shape[1] % count:
        raise ValueError(f"strip must be (H, k * w, 3) with one label per crop; got shape {pixels.shape} and {count} labels")
    width = pixels.shape[1] // count
    tiles = np.stack([pixels[:, i * width : (i + 1) * width] for i in range(count)])
    scale = max(1, size // max(pixels.shape[0], width))
    return grid(tiles, columns=min(3, count), padding=2, scale=scale, labels=list(labels))
