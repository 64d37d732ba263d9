"""Giving freed memory back to the operating system between bursts of work.

glibc keeps freed heap pages (and, after large frees, raises its mmap threshold so later large
tensors come from the heap), so a server's RSS climbs to the high-water mark of every batch
shape it has seen. ``release_free_memory()`` asks glibc to return free pages (``malloc_trim``);
the batching queues call it when they run out of work, which costs nothing under load.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache
from typing import Any


@cache
def _libc() -> Any | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim  # noqa: B018 (glibc only)
    except (OSError, AttributeError):
        return None
    return libc


def release_free_memory() -> bool:
    """Return free heap memory to the OS where the C library can (glibc); True if it did."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0))
