"""Finding one picture inside another, pixel for pixel (saved pictures are compositions)."""
from __future__ import annotations

import numpy as np


def position_of(part: np.ndarray, picture: np.ndarray) -> tuple[int, int] | None:
    """Where ``part`` sits in ``picture``, pixel for pixel, as (row, column); None if nowhere."""
    height, width = part.shape[:2]
    first = part[0].tobytes()
    for y in range(picture.shape[0] - height + 1):
        row = picture[y].tobytes()
        at = row.find(first)
        while at >= 0:
            if at % 3 == 0 and np.array_equal(picture[y : y + height, at // 3 : at // 3 + width], part):
                return y, at // 3
            at = row.find(first, at + 1)
    return None
