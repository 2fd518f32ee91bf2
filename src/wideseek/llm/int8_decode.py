"""Int8 copies of a model's linear weights for the small matmuls of decode steps on a CPU.

Contract: `use_int8_for_decode(model)` wraps every `nn.Linear` of the model (lm_head included)
in an `Int8DecodeLinear`: inside `decode_step()` (the decoder's one-token-per-row passes), a
call with at most `max_rows` rows multiplies by an int8 copy of the weight with one bf16/fp32
scale per output channel (torch's `_weight_int8pack_mm` kernel); a larger call (a wide batch)
uses the original weight unchanged, as does every call outside `decode_step()` (pre-fill,
`generate`, training). The original weights stay, so those numbers are exactly the model's;
decode logits of small batches differ by the per-channel rounding (|w - w8| <= scale / 2), so
a row's tokens can depend on whether its batch had more than `max_rows` rows.

Why: at batch 1 a decode step reads every weight once for ~0.27 GFLOP, so it is bound by
memory, not arithmetic. Measured over the default model's 211 matmuls on 2 AVX512 cores
(`bench/local_engine.py` gives the end-to-end figures): bf16 27.4 ms a pass at 1 row, int8
12.6 ms; at 4 rows 28.4 vs 16.2 ms; at 6 rows int8 is slower (37.6 vs 30.1 ms: the kernel
changes strategy), hence the `max_rows` of 4. The int8 copies cost half the bf16 weights'
memory again.

It knows modules and tensors, not engines or requests.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

import torch
from torch import nn

DEFAULT_MAX_ROWS = 4  # where the int8 kernel stops beating bf16 (see above)
_IN_DECODE_STEP: ContextVar[bool] = ContextVar("in_decode_step", default=False)


@contextlib.contextmanager
def decode_step() -> Iterator[None]:
    """Calls made inside may take the int8 path (the decoder wraps its decode passes)."""
    token = _IN_DECODE_STEP.set(True)
    try:
        yield
    finally:
        _IN_DECODE_STEP.reset(token)


class Int8DecodeLinear(nn.Module):
    def __init__(self, linear: nn.Linear, max_rows: int = DEFAULT_MAX_ROWS) -> None:
        super().__init__()
        self.linear = linear
        self.max_rows = max_rows
        weight = linear.weight.detach().float()  # (out, in)
        scale = weight.abs().amax(dim=1).clamp(min=1e-12) / 127.0
        q = torch.round(weight / scale.unsqueeze(1)).clamp(-127, 127).to(torch.int8)
        self.register_buffer("qweight", q, persistent=False)
        self.register_buffer("scale", scale.to(linear.weight.dtype), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // x.shape[-1]
        if rows > self.max_rows or x.dtype != self.scale.dtype or not _IN_DECODE_STEP.get():
            return self.linear(x)
        flat = x.reshape(rows, x.shape[-1])
        if not flat.is_contiguous():
            flat = flat.contiguous()
        y = torch.ops.aten._weight_int8pack_mm(flat, self.qweight, self.scale)
        if self.linear.bias is not None:
            y = y + self.linear.bias
        return y.reshape(*x.shape[:-1], y.shape[-1])


def use_int8_for_decode(model: nn.Module, max_rows: int = DEFAULT_MAX_ROWS) -> int:
    """Wrap every nn.Linear of `model` in place; returns how many were wrapped."""
    targets = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if type(child) is nn.Linear
    ]
    for parent, name, child in targets:
        setattr(parent, name, Int8DecodeLinear(child, max_rows))
    return len(targets)


def int8_decode_supported(device: torch.device) -> bool:
    """The int8 kernel is the CPU's; GPUs have faster paths of their own (none here yet)."""
    return device.type == "cpu" and hasattr(torch.ops.aten, "_weight_int8pack_mm")
