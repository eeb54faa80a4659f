"""Which torch device the library computes on: CUDA, then MPS, then CPU."""
from __future__ import annotations

import torch

VALID_DEVICES = ("auto", "cuda", "mps", "cpu")


def best_device() -> torch.device:
    """The fastest device available here: CUDA, then Apple's MPS, then the CPU.

    >>> best_device().type in ("cuda", "mps", "cpu")
    True
    """
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """Turn ``None``/``"auto"``/``"cuda:1"``/a ``torch.device`` into a usable device.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return best_device()
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"unknown device {device!r}; valid choices: {', '.join(VALID_DEVICES)} (or e.g. 'cuda:1')"
        ) from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but CUDA is not available here; use 'cpu' or 'auto'")
    if resolved.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError("device 'mps' was asked for but MPS is not available here; use 'cpu' or 'auto'")
    if resolved.type not in ("cuda", "mps", "cpu"):
        raise ValueError(f"unsupported device {device!r}; valid choices: {', '.join(VALID_DEVICES)}")
    return resolved
