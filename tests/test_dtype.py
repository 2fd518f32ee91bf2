"""`pick_dtype`: explicit choices as asked; `auto` from the CPU's bf16 units, the GPU's bf16
support, or (flags unreadable) a timed matmul. Probes are injected: no timing is asserted."""

from __future__ import annotations

import pytest
import torch

from wideseek.config import ConfigError
from wideseek.llm.dtype import pick_dtype, read_cpu_flags, time_matmul


def never(*_):
    raise AssertionError("not expected to run")


@pytest.mark.parametrize(
    ("choice", "dtype"),
    [("bf16", torch.bfloat16), ("FP32", torch.float32), ("fp16", torch.float16)],
)
def test_an_explicit_choice_is_taken_as_asked(choice, dtype):
    picked = pick_dtype(choice, cpu_flags=never, matmul_seconds=never)
    assert picked.dtype == dtype and "as asked" in picked.reason


@pytest.mark.parametrize(
    ("flags", "dtype"),
    [
        ({"avx2", "amx_bf16", "avx512_bf16"}, torch.bfloat16),
        ({"avx2", "avx512f", "avx512_bf16"}, torch.bfloat16),
        ({"avx2", "avx512f"}, torch.float32),
        (set(), torch.float32),
    ],
)
def test_auto_on_cpu_follows_the_bf16_flags(flags, dtype):
    picked = pick_dtype("auto", "cpu", cpu_flags=lambda: flags, matmul_seconds=never)
    assert picked.dtype == dtype
    assert picked.reason.startswith("bf16" if dtype == torch.bfloat16 else "fp32")
    assert "\n" not in picked.reason


@pytest.mark.parametrize(
    ("bf16_seconds", "dtype"), [(0.1, torch.bfloat16), (0.9, torch.float32), (30.0, torch.float32)]
)
def test_auto_times_a_matmul_when_flags_are_unreadable(bf16_seconds, dtype):
    seconds = {torch.float32: 1.0, torch.bfloat16: bf16_seconds}
    picked = pick_dtype("auto", "cpu", cpu_flags=lambda: None, matmul_seconds=seconds.__getitem__)
    assert picked.dtype == dtype and "matmul" in picked.reason


@pytest.mark.parametrize(("supported", "dtype"), [(True, torch.bfloat16), (False, torch.float32)])
def test_auto_on_cuda_asks_the_gpu(monkeypatch, supported, dtype):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: supported)
    assert pick_dtype("auto", "cuda", cpu_flags=never, matmul_seconds=never).dtype == dtype


def test_an_unknown_choice_is_a_config_error():
    with pytest.raises(ConfigError, match="dtype 'int4'"):
        pick_dtype("int4")


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512_bf16\n\nprocessor\t: 1\n")
    assert read_cpu_flags(cpuinfo) == {"fpu", "sse2", "avx512_bf16"}
    assert read_cpu_flags(tmp_path / "missing") is None


def test_the_matmul_probe_runs_in_both_dtypes():
    assert time_matmul(torch.float32, repeats=1) > 0
    assert time_matmul(torch.bfloat16, repeats=1) > 0
