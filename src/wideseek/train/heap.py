"""Give freed heap memory back to the operating system between training steps.

The default model's CPU SFT run (micro-batches of 4,096 tokens x 8) grew ~0.5 GB a step, from
10 GB to 22.8 GB, where the OOM killer ended it, although the loop keeps no tensors. The
likely cause: its micro-batches change shape every time (batches are bucketed by length), and
glibc's allocator keeps the freed blocks of one shape's activations in its arenas, where the
next shape cannot always reuse them. `malloc_trim(0)` hands the free pages back; it
costs milliseconds against a step of seconds. `bench/sft_memory.py` measured it on the real
trainer (12 one-micro-batch steps, default recipe): without it each step's peak memory rose from
5.8 GB to 9.0-9.6 GB within four steps and stayed there; with it the peaks went down again
(5.6-9.1 GB, following each batch's size). Over a longer run it slows the growth without
stopping it: stage 2 of the default model still climbed ~0.3 GB a step at its peaks (~11 to
17 GB over 21 steps); jemalloc holds such a run at 2-6 GB at a cost in speed
(docs/training.md, "Memory on a CPU").
What does stop it is a fresh process: `RestartToFreeMemory` is how a trainer says "my
checkpoint is saved and my heap has passed its limit"; `wideseek train sft` then starts itself
again, and the new process resumes from that checkpoint.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

from wideseek.errors import WideseekError


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


def peak_resident_gb() -> float:
    """The most resident memory this process image has held, in GB (10^9 bytes): what grows
    over a long run is the in-step peak (stage 2: ~6 GB after a step's trim, 13 GB inside it).
    Linux's VmHWM, which a restart by exec starts afresh (getrusage's ru_maxrss carries over
    exec); elsewhere the current figure."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e9  # kB
    except OSError:
        pass
    import psutil  # accelerate's dependency

    return psutil.Process().memory_info().rss / 1e9


class RestartToFreeMemory(WideseekError):
    """A run stopped at a saved checkpoint because its peak resident memory passed its limit;
    run it again (a new process) to resume there with a fresh heap."""

    def __init__(self, step: int, resident: float, limit: float) -> None:
        super().__init__(
            f"step {step} saved; peak resident memory {resident:.1f} GB passed {limit:g} GB: "
            "restarting from the checkpoint with a fresh heap"
        )
