"""A least-recently-used cache bounded by the bytes it holds, for every cache in
the package: computed pictures and activations must not grow without limit
however many images, layers or settings a session goes through."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Hashable

import numpy as np
import torch


def nbytes(value: Any) -> int:
    """Roughly how many bytes ``value`` holds: tensors, arrays and bytes, inside
    dicts, lists and tuples (other objects count as 64).

    >>> nbytes({"grid": np.zeros((10, 10), np.uint8), "png": b"1234"})
    104
    """
    if isinstance(value, torch.Tensor):
        return value.element_size() * value.nelement()
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, (bytes, bytearray, memoryview, str)):
        return len(value)
    if isinstance(value, dict):
        return sum(nbytes(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return sum(nbytes(item) for item in value)
    return 64


class BoundedCache:
    """A mapping that forgets its least recently used entries once it holds more
    than ``max_bytes`` (or more than ``max_items`` entries). An entry larger than
    ``max_bytes`` on its own is not kept.

    >>> cache = BoundedCache(max_bytes=1000)
    >>> cache["a"] = np.zeros(600, np.uint8); cache["b"] = np.zeros(600, np.uint8)
    >>> "a" in cache, "b" in cache, cache.nbytes
    (False, True, 600)
    """

    def __init__(self, max_bytes: int, max_items: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.max_items = max_items
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self.nbytes = 0
        self._lock = threading.RLock()  # widgets compute in background threads

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, default: Any = None) -> Any:
        """The value for ``key`` (now the most recently used), or ``default``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return default
            self._entries.move_to_end(key)
            return entry[0]

    def __getitem__(self, key: Hashable) -> Any:
        missing = object()
        value = self.get(key, missing)
        if value is missing:
            raise KeyError(key)
        return value

    def __setitem__(self, key: Hashable, value: Any) -> None:
        size = nbytes(value)
        with self._lock:
            self.pop(key)
            if size > self.max_bytes:
                return
            self._entries[key] = (value, size)
            self.nbytes += size
            while self.nbytes > self.max_bytes or (self.max_items is not None and len(self._entries) > self.max_items):
                _, (_, dropped) = self._entries.popitem(last=False)
                self.nbytes -= dropped

    def pop(self, key: Hashable, default: Any = None) -> Any:
        """Remove ``key`` if present; returns its value, or ``default``."""
        with self._lock:
            entry = self._entries.pop(key, None)
            if entry is None:
                return default
            self.nbytes -= entry[1]
            return entry[0]

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()
            self.nbytes = 0
