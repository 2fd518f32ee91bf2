"""Choosing the local engine a model runs on, per machine: torch or llama.cpp.

Contract: `pick_local_backend(setting, model, ...)` returns a `BackendChoice` (the backend and a
one-line reason to show the user). "torch" and "llama.cpp" are taken as asked. "auto" picks
llama.cpp only where all of these hold, else torch:
- torch would decode in fp32 on a CPU (no CUDA, no native bf16 units: llm/dtype.py), where
  llama.cpp decoded the shipped model's wide tasks ~3x faster (docs/engines.md); where torch
  has bf16 (AMX) or a GPU, torch was as fast or faster and has every feature;
- nothing torch-only was asked for: a dtype other than auto, or batch invariance;
- the model's base is a GGUF file (the default base is): llama.cpp runs the adapter merged
  into a copy of it (llm/gguf_export.py);
- llama-cpp-python is installed (an optional extra, built from source).
Left out on purpose: a seeded run's implicit batch invariance. Under auto a seeded run on
llama.cpp reproduces at the same concurrency only; a run records the backend it used (run.json,
`eval world --json`), so its figures are never taken for torch's.
The probes can be injected, so the decision is testable without the hardware. This module
knows machines and model bases; not engines' internals.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Literal, NamedTuple

import torch

from wideseek.llm.base_model import BaseModelError
from wideseek.llm.dtype import pick_dtype
from wideseek.llm.gguf_export import GGUFExportError, source_gguf
from wideseek.llm.resolved_model import ResolvedModel

Backend = Literal["torch", "llama.cpp"]


class BackendChoice(NamedTuple):
    backend: Backend
    reason: str


def llama_cpp_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def torch_dtype_on_this_machine() -> tuple[str, torch.dtype]:
    """The device and dtype a local torch engine would pick with dtype auto."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return device, pick_dtype("auto", device).dtype


def pick_local_backend(
    setting: str,
    model: ResolvedModel,
    *,
    dtype: str = "auto",
    batch_invariant: bool | None = None,
    torch_would_use: Callable[[], tuple[str, torch.dtype]] | None = None,
    llama_cpp: Callable[[], bool] | None = None,
) -> BackendChoice:
    """The local engine for `setting` (see the module docstring); `torch_would_use` and
    `llama_cpp` replace the machine probes (tests)."""
    if setting in ("torch", "llama.cpp"):
        return BackendChoice(setting, f"{setting}: as asked")  # type: ignore[arg-type]
    if dtype != "auto":
        return BackendChoice("torch", f"torch: dtype {dtype} asked (a torch setting)")
    if batch_invariant:
        return BackendChoice("torch", "torch: batch invariance asked (llama.cpp has none)")
    device, torch_dtype = (torch_would_use or torch_dtype_on_this_machine)()
    if device != "cpu" or torch_dtype != torch.float32:
        return BackendChoice("torch", f"torch: it decodes in {_name(torch_dtype)} on {device}")
    try:
        source_gguf(model)
    except (GGUFExportError, BaseModelError):
        return BackendChoice("torch", f"torch: {model.name}'s base is not a GGUF file")
    if not (llama_cpp or llama_cpp_installed)():
        return BackendChoice(
            "torch",
            "torch, in fp32 on this CPU (no bf16 units): llama.cpp would decode ~3x faster; "
            "install the [llamacpp] extra (docs/engines.md)",
        )
    return BackendChoice(
        "llama.cpp", "llama.cpp: this CPU has no bf16 units, so torch would decode in fp32"
    )


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
