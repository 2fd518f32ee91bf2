"""train/heap: freed heap goes back to the OS where the C library can (glibc); else a no-op."""

import platform

import pytest

from wideseek.train import heap


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_release_free_heap_calls_glibc_malloc_trim() -> None:
    assert heap._malloc_trim() is not None
    assert heap.release_free_heap() is True


def test_release_free_heap_is_a_no_op_without_malloc_trim(monkeypatch) -> None:
    monkeypatch.setattr(heap, "_malloc_trim", lambda: None)
    assert heap.release_free_heap() is False
