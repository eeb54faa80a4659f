"""Scale feature maps and kernels to [0, 1] for display: per tile, per layer, or a fixed range.

The same activations look very different under each choice, so the choice is the
user's: "tile" shows the pattern inside every map, "layer" shows which maps are
strong, "fixed" compares across images and layers.
"""
from __future__ import annotations

import numpy as np

from cnn_widgets._choices import invalid_choice
from cnn_widgets.render._arrays import as_float_array

NORMALIZATIONS = ("tile", "layer", "fixed")


def normalize(maps: object, mode: str = "tile", vrange: tuple[float, float] | None = None,
              symmetric: bool = False) -> np.ndarray:
    """Scale ``maps`` of shape (H, W) or (N, H, W) to float32 in [0, 1], keeping the shape.

    ``mode`` is "tile" (each map by its own min and max), "layer" (the min and max of
    the whole stack) or "fixed" (``vrange=(low, high)``, values outside are clipped;
    ``vrange`` is ignored by the other modes). ``symmetric=True`` is for signed data
    shown with a diverging colormap: the range becomes ±max(|x|) (or ±max(|low|, |high|)),
    so 0 lands on 0.5. A constant map is flat at 0.0 (0.5 when symmetric) in "tile" mode,
    as is a constant stack in "layer" mode; a constant map within a varied stack or a
    fixed range sits at its own position. NaN and infinities count as 0.

    >>> normalize(np.array([[0.0, 5.0], [10.0, 10.0]])).tolist()
    [[0.0, 0.5], [1.0, 1.0]]
    >>> normalize(np.array([[[0.0, 2.0]], [[0.0, 4.0]]]), mode="layer").tolist()
    [[[0.0, 0.5]], [[0.0, 1.0]]]
    >>> normalize(np.array([[-2.0, 0.0, 1.0]]), symmetric=True).tolist()
    [[0.0, 0.5, 0.75]]
    >>> normalize(np.array([[7.0, 7.0]])).tolist()
    [[0.0, 0.0]]
    """
    if mode not in NORMALIZATIONS:
        raise invalid_choice("normalization mode", mode, NORMALIZATIONS)
    values = as_float_array(maps)
    if values.ndim < 2:
        raise ValueError(f"maps must have shape (H, W) or (N, H, W), got shape {values.shape}")
    if values.size == 0:
        return np.zeros(values.shape, dtype=np.float32)

    if mode == "fixed":
        low, high = _fixed_range(vrange, symmetric)
        flat = False
    else:
        # "tile" reduces over each map's own pixels; "layer" over everything.
        axes = (-2, -1) if mode == "tile" else None
        low = values.min(axis=axes, keepdims=True)
        high = values.max(axis=axes, keepdims=True)
        # A constant map has no pattern to show, whatever its value: it reads as
        # "nothing here" (black, or the neutral middle of a diverging map).
        flat = high == low
        if symmetric:
            high = np.maximum(np.abs(low), np.abs(high))
            low = -high

    span = np.where(flat, 1.0, high - low)
    scaled = (values - low) / span
    scaled = np.where(flat, 0.5 if symmetric else 0.0, scaled)
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)


def _fixed_range(vrange: tuple[float, float] | None, symmetric: bool) -> tuple[float, float]:
    if vrange is None:
        raise ValueError("normalization mode 'fixed' needs vrange=(low, high)")
    try:
        low, high = (float(bound) for bound in vrange)
    except (TypeError, ValueError):
        raise ValueError(f"vrange must be two numbers (low, high), got {vrange!r}") from None
    if not (np.isfinite(low) and np.isfinite(high)) or high <= low:
        raise ValueError(f"vrange must be finite with low < high, got {vrange!r}")
    if symmetric:
        bound = max(abs(low), abs(high))
        return -bound, bound
    return low, high
