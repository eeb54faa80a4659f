"""Finding one picture inside another, pixel for pixel (saved pictures are compositions)."""
from __future__ import annotations

import numpy as np


def position_of(part: np.ndarray, picture: np.ndarray) -> tuple[int, int] | None:
    """Where ``part`` sits in ``picture``, pixel for pixel, as (row, column); None if nowhere.

    The first position in reading order (top row first, then leftmost). Candidates are found by a
    byte search for the part's most varied row: a plain row (a caption's blank top line) would
    match almost everywhere in a picture's background and make every pixel a candidate."""
    height, width = part.shape[:2]
    pixel = part[0, 0].nbytes if width else 1
    anchor = max(range(height), key=lambda r: len(np.unique(part[r].reshape(width, -1), axis=0))) if width else 0
    needle = part[anchor].tobytes()
    for y in range(picture.shape[0] - height + 1):
        row = picture[y + anchor].tobytes()
        at = row.find(needle)
        while at >= 0:
            if at % pixel == 0 and np.array_equal(picture[y : y + height, at // pixel : at // pixel + width], part):
                return y, at // pixel
            at = row.find(needle, at + 1)
    return None
