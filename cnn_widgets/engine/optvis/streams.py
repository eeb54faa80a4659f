"""Per-image random streams, so that an image's randomness is its own.

Every image of a batch gets its own ``torch.Generator``, seeded from
``(seed, label, occurrence)`` where ``label`` is the filter (or class) the image
is for and ``occurrence`` counts earlier images with the same label. Image i's
starting noise and random transforms therefore depend on the seed and on what
it visualizes, never on its position in the batch or on the batch size: one
batched run gives the same images as one run per filter. The generators live
on the CPU, so the same seed also gives the same draws on CPU, CUDA and MPS;
the global torch, NumPy and Python random states are never touched.
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np
import torch


def stream_seeds(seed: int, labels: Sequence[int]) -> list[int]:
    """One 63-bit seed per image, a hash of (seed, label, occurrence of that label so far).

    >>> a, b, c = stream_seeds(0, [5, 7, 5])
    >>> a == stream_seeds(0, [5])[0], a != c, a != stream_seeds(1, [5])[0]
    (True, True, True)
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seen: Counter = Counter()
    seeds = []
    for label in labels:
        occurrence = seen[label]
        seen[label] += 1
        # SeedSequence mixes its inputs well; it owns no global state.
        words = np.random.SeedSequence([int(seed), int(label), occurrence]).generate_state(2, np.uint32)
        seeds.append((int(words[0]) << 31) ^ int(words[1]))
    return seeds


class ImageStreams:
    """One CPU ``torch.Generator`` per image; draws come back stacked as (N, ...).

    Every image is asked for the same sequence of draws, so image i's numbers
    depend only on its own stream.

    >>> streams = ImageStreams(seed=0, labels=[3, 4])
    >>> streams.uniform((2,)).shape
    torch.Size([2, 2])
    >>> bool((ImageStreams(0, [4]).uniform((2,)) == ImageStreams(0, [3, 4]).uniform((2,))[1]).all())
    True
    """

    def __init__(self, seed: int, labels: Sequence[int]) -> None:
        self.labels = [int(label) for label in labels]
        self.generators = [torch.Generator().manual_seed(s) for s in stream_seeds(seed, self.labels)]

    def __len__(self) -> int:
        return len(self.generators)

    def normal(self, shape: Sequence[int]) -> torch.Tensor:
        """Standard normal draws, (N, *shape), float32 on the CPU."""
        return torch.stack([torch.randn(*shape, generator=g) for g in self.generators])

    def uniform(self, shape: Sequence[int]) -> torch.Tensor:
        """Uniform draws in [0, 1), (N, *shape), float32 on the CPU."""
        return torch.stack([torch.rand(*shape, generator=g) for g in self.generators])
