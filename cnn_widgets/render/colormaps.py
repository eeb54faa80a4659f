"""Colormaps: values in [0, 1] to RGB pixels through small cached lookup tables.

The tables come from the ``cmap`` package, which has no dependencies (no matplotlib).
"""
from __future__ import annotations

import functools

import numpy as np

from cnn_widgets._choices import invalid_choice
from cnn_widgets.render._arrays import as_numpy

# Our short names -> fully namespaced names in cmap's catalog (a bare name like "RdBu"
# can be ambiguous there and makes cmap print a warning). "diverging" is ColorBrewer's
# RdBu reversed: perceptual, blue for negative, near-white at zero, red for positive.
_CMAP_NAMES = {
    "gray": "matlab:gray",
    "viridis": "bids:viridis",
    "inferno": "bids:inferno",
    "magma": "bids:magma",
    "plasma": "bids:plasma",
    "cividis": "cividis:cividis",
    "diverging": "colorbrewer:RdBu_r",
    "turbo": "google:turbo",
    "jet": "matlab:jet",
}
COLORMAPS = tuple(_CMAP_NAMES)

LUT_SIZE = 256


@functools.lru_cache(maxsize=None)
def colormap_lut(colormap: str = "gray") -> np.ndarray:
    """The read-only (256, 3) uint8 lookup table of ``colormap``; entry i is the color of i / 255.

    >>> colormap_lut("gray")[[0, 255]].tolist()
    [[0, 0, 0], [255, 255, 255]]
    """
    if colormap not in _CMAP_NAMES:
        raise invalid_choice("colormap", colormap, COLORMAPS)
    # Imported here so that importing cnn_widgets.render does not load cmap's catalog.
    from cmap import Colormap

    rgba = Colormap(_CMAP_NAMES[colormap]).lut(LUT_SIZE)
    lut = np.rint(np.clip(rgba[:, :3], 0.0, 1.0) * 255).astype(np.uint8)
    lut.flags.writeable = False
    return lut


def colorize(values: object, colormap: str = "gray") -> np.ndarray:
    """Map ``values`` in [0, 1] (any shape) to uint8 RGB of shape ``values.shape + (3,)``.

    Values outside [0, 1] are clipped and NaN counts as 0, so a sloppy input still
    gives a picture; use :func:`normalize` first to choose how values are scaled.

    >>> colorize(np.array([[0.0, 1.0]])).tolist()
    [[[0, 0, 0], [255, 255, 255]]]
    >>> colorize(np.zeros((4, 5, 6)), "viridis").shape
    (4, 5, 6, 3)
    """
    lut = colormap_lut(colormap)
    array = as_numpy(values).astype(np.float32)
    np.nan_to_num(array, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
    indices = np.rint(np.clip(array, 0.0, 1.0) * (LUT_SIZE - 1)).astype(np.uint8)
    return lut[indices]
