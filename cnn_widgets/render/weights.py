"""Convolution kernels as pictures: first-layer filters in color, deeper ones per input channel or averaged.

Signed weights need care: the color view stretches each kernel from its minimum
(black) to its maximum (full color), as in the seeds, while the per-channel and
summary views keep zero at the middle of a diverging colormap so that the sign
of every weight stays visible.
"""
from __future__ import annotations

import numpy as np

from cnn_widgets._choices import invalid_choice
from cnn_widgets.render._arrays import as_float_array
from cnn_widgets.render.colormaps import colorize
from cnn_widgets.render.normalize import NORMALIZATIONS, normalize

WEIGHT_VIEWS = ("auto", "color", "channels", "summary")


def weight_tiles(weights: object, view: str = "auto", normalization: str = "tile", colormap: str | None = None,
                 *, vrange: tuple[float, float] | None = None, symmetric: bool = True) -> tuple[np.ndarray, list[str]]:
    """Tiles (N, kh, kw, 3) uint8 and one label per tile for conv ``weights`` of shape (out, in, kh, kw).

    Views: "color" shows each filter as an RGB picture (only for 3 input channels);
    "channels" shows every (filter, input channel) kernel, tile k being filter
    k // in and channel k % in, labelled "f{filter} c{channel}"; "summary" shows each
    filter's mean over its input channels; "auto" is "color" for 3 input channels,
    else "summary". ``normalization`` is a mode of :func:`normalize` ("fixed" needs
    ``vrange``). "channels" and "summary" use ``colormap`` (default "diverging") with
    zero at its middle unless ``symmetric=False``; the color view ignores ``colormap``.
    Pass the tiles to :func:`grid`, with ``scale=tile_scale(kh, kw)`` for small kernels.

    >>> tiles, labels = weight_tiles(np.random.default_rng(0).normal(size=(8, 3, 3, 3)))
    >>> tiles.shape, labels[:2]
    ((8, 3, 3, 3), ['filter 0', 'filter 1'])
    >>> tiles, labels = weight_tiles(np.zeros((4, 16, 5, 5)), view="channels")
    >>> tiles.shape, labels[17]
    ((64, 5, 5, 3), 'f1 c1')
    """
    if view not in WEIGHT_VIEWS:
        raise invalid_choice("weight view", view, WEIGHT_VIEWS)
    if normalization not in NORMALIZATIONS:
        raise invalid_choice("normalization mode", normalization, NORMALIZATIONS)
    values = as_float_array(weights)
    if values.ndim != 4:
        raise ValueError(f"conv weights must have shape (out, in, kh, kw), got shape {values.shape}")
    out_channels, in_channels, kernel_h, kernel_w = values.shape
    if view == "auto":
        view = "color" if in_channels == 3 else "summary"

    if view == "color":
        if in_channels != 3:
            raise ValueError(
                f"the 'color' view needs 3 input channels (one per RGB color), but these weights have "
                f"{in_channels}; use view='channels' or view='summary'"
            )
        # Stacking a filter's three channels into one (3 * kh, kw) map makes "tile" mode
        # scale each filter by its own min and max across all colors.
        scaled = normalize(values.reshape(out_channels, 3 * kernel_h, kernel_w), normalization, vrange)
        rgb = scaled.reshape(out_channels, 3, kernel_h, kernel_w).transpose(0, 2, 3, 1)
        tiles = np.rint(rgb * 255).astype(np.uint8)
        return tiles, [f"filter {index}" for index in range(out_channels)]

    if view == "channels":
        maps = values.reshape(out_channels * in_channels, kernel_h, kernel_w)
        labels = [f"f{index // in_channels} c{index % in_channels}" for index in range(len(maps))]
    else:
        maps = values.mean(axis=1)
        labels = [f"filter {index}" for index in range(out_channels)]
    scaled = normalize(maps, normalization, vrange, symmetric=symmetric)
    return colorize(scaled, colormap or "diverging"), labels
