"""Keeping freed memory in the process during a long CPU computation.

Every step of activation maximization or DeepDream (and every batch of a dataset
scan) allocates and frees the same large buffers (activations, gradients: tens of MB each). glibc's malloc serves
buffers that large with ``mmap`` and gives them back with ``munmap`` on free, so
every step the kernel unmaps them, maps them again and zero-fills every page on
first touch: about a fifth of a VGG16 step on the CPU is that system time.
:func:`keep_freed_memory` tells glibc (``mallopt``) to serve everything from its
heap and never to trim it while the computation runs, so the buffers freed by
one step are reused by the next; afterwards it puts the settings back and hands
the kept memory back to the system (``malloc_trim``).

The host process is affected only while one of our computations runs (all of its
threads: malloc settings are process-wide). It does nothing when the computation
is not on the CPU, where the platform has no such knob (macOS, Windows, musl), or
when the environment variable ``CNN_WIDGETS_KEEP_FREED_MEMORY`` is ``0``.

glibc cannot report its settings, and any ``mallopt`` call turns off its dynamic
mmap threshold for good; afterwards the thresholds are therefore set to the values
that dynamic rule settles at in a process that frees tensors of 32 MiB or more
(mmap above 32 MiB, trim above 64 MiB), or to the ``MALLOC_MMAP_THRESHOLD_`` /
``MALLOC_TRIM_THRESHOLD_`` / ``MALLOC_MMAP_MAX_`` values the host started with.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading

import torch

OPT_OUT = "CNN_WIDGETS_KEEP_FREED_MEMORY"
# mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4
# What glibc's settings are put back to (see the module docstring).
_AFTERWARDS = {
    M_MMAP_MAX: ("MALLOC_MMAP_MAX_", 65536),  # glibc's default
    M_MMAP_THRESHOLD: ("MALLOC_MMAP_THRESHOLD_", 32 << 20),  # DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
    M_TRIM_THRESHOLD: ("MALLOC_TRIM_THRESHOLD_", 64 << 20),  # twice that, as the dynamic rule sets it
}

_lock = threading.Lock()
_active = 0  # computations inside keep_freed_memory, over all threads


def _glibc():
    """glibc's C library, or None where malloc is not glibc's."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # only glibc has it (musl, bionic do not)
        libc.mallopt, libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    return libc


_LIBC = _glibc()


def is_available() -> bool:
    """Whether keeping freed memory can take effect here: glibc's malloc, and not turned off
    with ``CNN_WIDGETS_KEEP_FREED_MEMORY=0``.

    >>> isinstance(is_available(), bool)
    True
    """
    return _LIBC is not None and os.environ.get(OPT_OUT, "1").strip().lower() not in ("0", "false", "no", "off")


@contextlib.contextmanager
def keep_freed_memory(device: torch.device | str = "cpu"):
    """Within the block, memory freed by the process stays in it for reuse (see the module
    docstring); afterwards glibc's settings are put back and the kept memory returned.

    Nested and concurrent blocks (several widgets computing at once) share one setting:
    the first to enter turns it on, the last to leave turns it off. Nothing happens for a
    device other than the CPU, off glibc, or with ``CNN_WIDGETS_KEEP_FREED_MEMORY=0``.

    >>> with keep_freed_memory("cpu"):
    ...     total = sum(torch.ones(1 << 20).sum().item() for _ in range(3))
    >>> total
    3145728.0
    """
    if torch.device(device).type != "cpu" or not is_available():
        yield
        return
    global _active
    with _lock:
        _active += 1
        if _active == 1:
            _LIBC.mallopt(M_MMAP_MAX, 0)  # every block from the heap, none mmapped
            _LIBC.mallopt(M_TRIM_THRESHOLD, -1)  # and the heap never trimmed
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                for parameter, (variable, default) in _AFTERWARDS.items():
                    _LIBC.mallopt(parameter, _int_from_environment(variable, default))
                _LIBC.malloc_trim(0)


def _int_from_environment(variable: str, default: int) -> int:
    try:
        return int(os.environ[variable])
    except (KeyError, ValueError):
        return default
