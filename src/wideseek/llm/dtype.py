"""Choosing the floating-point type a local model runs in, per machine.

Contract: `pick_dtype(choice, device)` returns a `DtypeChoice` (a torch dtype and a one-line
reason to show the user). "bf16", "fp16" and "fp32" are taken as asked. "auto":
- on CUDA, bf16 where the GPU supports it, else fp32;
- on CPU, bf16 only where the CPU has native bf16 matmul units (AMX-BF16 or AVX512-BF16 in
  /proc/cpuinfo): there it measured ~3-7x faster than fp32, on CPUs without them ~30x slower
  (emulated). Where the flags cannot be read (not Linux), one small matmul is timed each way
  and bf16 is taken only if clearly faster;
- elsewhere (MPS, ...), fp32.
Both probes can be injected, so the decision is testable without the hardware. This module
knows torch dtypes and CPU features; not models or engines.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

import torch

from wideseek.errors import ConfigError

DTYPES: dict[str, torch.dtype] = {
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
    "fp32": torch.float32,
    "float32": torch.float32,
}
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
# The timing fallback wants a clear win: noise must not flip a machine to the less exact type.
BF16_MIN_SPEEDUP = 1.5


class DtypeChoice(NamedTuple):
    dtype: torch.dtype
    reason: str


def pick_dtype(
    choice: str = "auto",
    device: str | torch.device = "cpu",
    *,
    cpu_flags: Callable[[], Iterable[str] | None] | None = None,
    matmul_seconds: Callable[[torch.dtype], float] | None = None,
) -> DtypeChoice:
    """The dtype for `choice` on `device` (see the module docstring). `cpu_flags` and
    `matmul_seconds` replace the /proc/cpuinfo read and the matmul timing (tests)."""
    name = choice.strip().lower()
    if name in DTYPES:
        return DtypeChoice(DTYPES[name], f"{name}: as asked")
    if name != "auto":
        raise ConfigError(f"dtype {choice!r}: expected auto, bf16, fp16 or fp32")
    kind = torch.device(device).type
    if kind == "cuda":
        if torch.cuda.is_bf16_supported():
            return DtypeChoice(torch.bfloat16, "bf16: this GPU supports bfloat16")
        return DtypeChoice(torch.float32, "fp32: this GPU has no bfloat16")
    if kind != "cpu":
        return DtypeChoice(torch.float32, f"fp32: the safe default on {kind}")
    flags = (cpu_flags or read_cpu_flags)()
    if flags is not None:
        native = sorted(set(flags) & set(BF16_CPU_FLAGS))
        if native:
            return DtypeChoice(
                torch.bfloat16, f"bf16: this CPU has {', '.join(native)} (native bf16 matmuls)"
            )
        return DtypeChoice(
            torch.float32, "fp32: this CPU has no amx_bf16/avx512_bf16 (bf16 would be emulated)"
        )
    timer = matmul_seconds or time_matmul
    fp32_s, bf16_s = timer(torch.float32), timer(torch.bfloat16)
    speedup = fp32_s / max(bf16_s, 1e-12)
    if speedup >= BF16_MIN_SPEEDUP:
        return DtypeChoice(torch.bfloat16, f"bf16: a timed matmul ran {speedup:.1f}x faster")
    return DtypeChoice(torch.float32, f"fp32: a timed bf16 matmul ran {speedup:.2f}x fp32's speed")


def read_cpu_flags(path: str | Path = "/proc/cpuinfo") -> set[str] | None:
    """The CPU feature flags of the first processor, or None where they cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):  # x86, arm
                    return set(value.split())
    except OSError:
        return None
    return None


def time_matmul(dtype: torch.dtype, repeats: int = 5) -> float:
    """Best-of-`repeats` seconds for a (256, 576) @ (576, 1536) matmul in `dtype` on CPU: the
    shape of one MLP projection of a ~135M model over a short batch."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(256, 576, generator=gen).to(dtype)
    b = torch.randn(576, 1536, generator=gen).to(dtype)
    a @ b  # warm-up: first calls pick kernels and allocate
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return best
