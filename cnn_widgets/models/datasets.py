"""Readers for the datasets the project uses offline (Debian's dataset-fashion-mnist)."""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch

FASHION_MNIST_DIR = Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _find(stem: str) -> Path:
    for candidate in (FASHION_MNIST_DIR / stem, FASHION_MNIST_DIR / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        f"Fashion-MNIST file {stem}(.gz) not found in {FASHION_MNIST_DIR}; "
        "install it with `apt-get install dataset-fashion-mnist` or set FASHION_MNIST_DIR"
    )


def load_fashion_mnist(split: str = "test") -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 28, 28) uint8 and labels (N,) of the Fashion-MNIST ``train`` or ``test`` split."""
    if split not in _FILES:
        raise ValueError(f"unknown split {split!r}; valid choices: {', '.join(_FILES)}")
    images_name, labels_name = _FILES[split]
    images = _read_idx(_find(images_name))
    labels = _read_idx(_find(labels_name))
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.copy())
