"""Turn whatever the caller holds (NumPy array, torch tensor, nested list) into a NumPy array.

Torch is never imported here: a tensor is recognized by its ``detach`` method, so
rendering stays importable and fast for callers that only have NumPy arrays.
"""
from __future__ import annotations

import numpy as np


def as_numpy(values: object) -> np.ndarray:
    """``values`` as a NumPy array with its own dtype; tensors are detached and moved to the CPU."""
    if hasattr(values, "detach") and hasattr(values, "cpu"):
        tensor = values.detach().cpu()
        # NumPy has no bfloat16 or float16-on-every-platform story; render needs floats anyway.
        if tensor.is_floating_point():
            tensor = tensor.float()
        return tensor.numpy()
    return np.asarray(values)


def as_float_array(values: object) -> np.ndarray:
    """``values`` as float64 with NaN and infinities replaced by 0.

    float64 because a range like ``max - min`` of large float32 values can overflow.
    """
    array = as_numpy(values).astype(np.float64, copy=True)
    np.nan_to_num(array, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return array


def as_uint8_array(values: object, what: str) -> np.ndarray:
    """``values`` as a uint8 array; anything else is a ``TypeError`` that says how to convert."""
    array = as_numpy(values)
    if array.dtype != np.uint8:
        raise TypeError(
            f"{what} must be uint8, got {array.dtype}; "
            "convert floats in [0, 1] with colorize(...) or to_uint8_image(...) first"
        )
    return array
