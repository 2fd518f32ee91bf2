"""The policy's logprobs of a training sequence: the one place the learner computes them.

Contract: `sequence_logprobs(model, input_ids, temperature, mask)` runs `model` on `input_ids`
(1, L) and returns, for the tokens 1..L-1, their logprobs under softmax(logits / T) with their
gradient (1, L-1), and the policy's mean entropy over the `mask`ed positions (a metric, no
gradient). The logprobs are `llm.batched_decode.token_logprobs`, the definition the engine
samples with, so the update's ratio new / old compares like with like.

With a `mask`, only the masked positions are projected onto the vocabulary (transformers'
`logits_to_keep` as positions, as SFT's `train.token_loss` does) and the others read 0: an
agent's sequence is mostly prompt and tool results, whose (L, V) fp32 logits were most of an
update's memory and a fifth of its multiply-adds, for nothing the loss reads.
"""

from __future__ import annotations

from typing import Any

import torch

from wideseek.llm.batched_decode import token_logprobs


def sequence_logprobs(
    model: Any, input_ids: torch.Tensor, temperature: float, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, float | None]:
    """input_ids (1, L), mask (1, L-1) -> (logprobs (1, L-1), 0 where the mask is false; mean
    entropy over the mask or None without one)."""
    targets = input_ids[:, 1:]  # position t predicts token t+1
    if mask is None or not bool(mask.any()):
        logits = model(input_ids=input_ids).logits[:, :-1]  # (1, L-1, V)
        return token_logprobs(logits, targets, temperature), None
    wanted = mask[0].nonzero().flatten()  # (K,)
    logits = model(input_ids=input_ids, logits_to_keep=wanted).logits  # (1, K, V)
    kept = token_logprobs(logits, targets[:, wanted], temperature)  # (1, K)
    new = torch.zeros(targets.shape, dtype=kept.dtype, device=kept.device)
    new = new.index_copy(1, wanted, kept)
    with torch.no_grad():
        logp = torch.log_softmax(logits[0].float() / temperature, dim=-1)  # (K, V)
        entropy = float(-(logp.exp() * logp).sum(-1).mean())
    return new, entropy
