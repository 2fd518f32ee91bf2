"""The policy's logprobs of a training sequence: the one place the learner computes them.

Contract: `sequence_logprobs(model, input_ids, temperature, mask)` runs `model` on `input_ids`
(1, L) and returns, for the tokens 1..L-1, their logprobs under softmax(logits / T) with their
gradient (1, L-1), and the policy's mean entropy over the `mask`ed positions (a metric, no
gradient). The logprobs are `llm.batched_decode.token_logprobs`, the definition the engine
samples with, so the update's ratio new / old compares like with like.
"""

from __future__ import annotations

from typing import Any

import torch

from wideseek.llm.batched_decode import token_logprobs


def sequence_logprobs(
    model: Any, input_ids: torch.Tensor, temperature: float, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, float | None]:
    """input_ids (1, L), mask (1, L-1) -> (logprobs (1, L-1), mean entropy over the mask or
    None without one)."""
    logits = model(input_ids=input_ids).logits[:, :-1]  # (1, L-1, V)
    new = token_logprobs(logits, input_ids[:, 1:], temperature)  # (1, L-1)
    if mask is None or not bool(mask.any()):
        return new, None
    with torch.no_grad():  # the masked rows only: the response tokens, a fraction of L
        logp = torch.log_softmax(logits[mask.bool()].float() / temperature, dim=-1)  # (M, V)
        entropy = float(-(logp.exp() * logp).sum(-1).mean())
    return new, entropy
