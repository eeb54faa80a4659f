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
from cnn_widgets.render.colorbar import value_range
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


def shown_view(view: str, in_channels: int) -> str:
    """The view :func:`weight_tiles` draws for ``view`` ("auto" resolved) and a layer
    with ``in_channels`` input channels.

    >>> shown_view("auto", 3), shown_view("auto", 64), shown_view("channels", 64)
    ('color', 'summary', 'channels')
    """
    if view not in WEIGHT_VIEWS:
        raise invalid_choice("weight view", view, WEIGHT_VIEWS)
    if view == "auto":
        return "color" if in_channels == 3 else "summary"
    return view


def weight_range(weights: object, view: str = "auto", symmetric: bool = True) -> tuple[float, float]:
    """The (low, high) one scale for all the tiles of ``view`` spans: the weights
    themselves for "color" and "channels", each filter's mean over its input channels
    for "summary"; ±max(|x|) when ``symmetric`` (zero in the middle, as a diverging
    colormap and the color view's gray need), else the data's range stretched to zero.
    Pass it to :func:`weight_tiles` as ``normalization="fixed", vrange=...``.

    >>> weights = np.array([[[[-1.0, 2.0]], [[3.0, 0.0]]]])  # 1 filter, 2 input channels, 1x2
    >>> weight_range(weights, "channels"), weight_range(weights, "summary")
    ((-3.0, 3.0), (-1.0, 1.0))
    """
    values = as_float_array(weights)
    if values.ndim != 4:
        raise ValueError(f"conv weights must have shape (out, in, kh, kw), got shape {values.shape}")
    if shown_view(view, values.shape[1]) == "summary":
        values = values.mean(axis=1)
    return value_range(values, symmetric=symmetric)


COLOR_NAMES = ("red", "green", "blue")
MAX_NUMBERED_KERNEL = 5  # kernels up to 5x5 get their numbers written out


def kernel_cells(kernel: object, view: str, vrange: tuple[float, float], colormap: str = "diverging") -> list[dict]:
    """One filter's weights as numbered cells, for kernels of at most 5x5 (``[]`` for
    larger ones): a list of ``{"label", "values", "colors"}``, where ``values`` are the
    kernel's numbers row by row and ``colors`` the CSS colour each number has in the
    picture (on the scale ``vrange``). ``kernel`` is (in, kh, kw). The color view gives
    one table per input colour, coloured by that colour alone; the other views one per
    input channel, and "summary" first the mean over the input channels (what its tile shows).

    >>> cells = kernel_cells(np.array([[[-1.0, 0.0], [0.5, 1.0]]]), "summary", (-1.0, 1.0))
    >>> cells[0]["label"], cells[0]["values"], cells[0]["colors"][0][1]
    ('the kernel (1 input channel)', [[-1.0, 0.0], [0.5, 1.0]], '#f7f6f6')
    """
    values = as_float_array(kernel)
    if values.ndim != 3:
        raise ValueError(f"a kernel must have shape (in, kh, kw), got shape {values.shape}")
    in_channels, kernel_h, kernel_w = values.shape
    if max(kernel_h, kernel_w) > MAX_NUMBERED_KERNEL:
        return []
    view = shown_view(view, in_channels)
    if view == "color":
        scaled = normalize(values, "fixed", vrange)
        cells = []
        for channel, name in enumerate(COLOR_NAMES):
            rgb = np.zeros((kernel_h, kernel_w, 3), np.uint8)
            rgb[..., channel] = np.rint(scaled[channel] * 255).astype(np.uint8)
            cells.append({"label": f"{name} input", "values": values[channel].tolist(), "colors": _css(rgb)})
        return cells
    colors = colorize(normalize(values, "fixed", vrange), colormap)
    if in_channels == 1:
        return [{"label": "the kernel (1 input channel)", "values": values[0].tolist(), "colors": _css(colors[0])}]
    cells = [{"label": f"input channel {c}", "values": values[c].tolist(), "colors": _css(colors[c])} for c in range(in_channels)]
    if view == "summary":
        mean = values.mean(axis=0)
        mean_colors = colorize(normalize(mean, "fixed", vrange), colormap)
        cells.insert(0, {"label": f"mean over the {in_channels} input channels", "values": mean.tolist(), "colors": _css(mean_colors)})
    return cells


_HEX = [f"{value:02x}" for value in range(256)]


def _css(rgb: np.ndarray) -> list[list[str]]:
    return [["#" + _HEX[r] + _HEX[g] + _HEX[b] for r, g, b in row] for row in rgb.tolist()]
