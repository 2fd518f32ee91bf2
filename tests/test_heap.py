"""train/heap: freed heap goes back to the OS where the C library can (glibc); else a no-op."""

import os
import platform
import subprocess
import sys

import pytest

from wideseek.train import heap


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_release_free_heap_calls_glibc_malloc_trim() -> None:
    assert heap._malloc_trim() is not None
    assert heap.release_free_heap() is True


def test_release_free_heap_is_a_no_op_without_malloc_trim(monkeypatch) -> None:
    monkeypatch.setattr(heap, "_malloc_trim", lambda: None)
    assert heap.release_free_heap() is False


EXEC_AFTER_PEAK = """
import os, sys
from wideseek.train.heap import peak_resident_gb
if sys.argv[1] == "grow":
    block = bytearray(400_000_000)  # touched: resident
    print(peak_resident_gb(), flush=True)
    del block
    os.execv(sys.executable, [sys.executable, "-c", sys.argv[2], "fresh", sys.argv[2]])
print(peak_resident_gb())
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="VmHWM is Linux's")
def test_peak_memory_starts_afresh_in_a_process_restarted_by_exec() -> None:
    # what restart_above_gb relies on: else the restarted run would stop again at once
    command = [sys.executable, "-c", EXEC_AFTER_PEAK, "grow", EXEC_AFTER_PEAK]
    grown, fresh = map(float, subprocess.check_output(command, text=True).split())
    assert grown > 0.4 > fresh
