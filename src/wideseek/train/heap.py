"""Give freed heap memory back to the operating system between training steps.

A CPU training run on glibc grew ~0.5 GB a step (10 GB to the 24 GB machine's limit in ~25
steps) although the loop keeps no tensors: its micro-batches change shape every time (batches
are bucketed by length), and glibc's allocator keeps the freed blocks of one shape's
activations in its arenas, too fragmented to serve the next shape, without returning them.
`malloc_trim(0)` hands the free pages back; it costs milliseconds against a step of seconds.
`bench/sft_memory.py` measures the growth with and without it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where the C library has none (macOS, musl, Windows)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None


def release_free_heap() -> bool:
    """Return the allocator's free pages to the OS; False where that is not possible."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
