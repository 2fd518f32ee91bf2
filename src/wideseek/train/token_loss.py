"""The SFT loss with the vocabulary projection computed only where a label is.

A causal LM's forward projects every position onto the vocabulary (576 → 49,152 for
SmolLM2-135M: a fifth of the model's multiply-adds per token) and keeps the (B, T, V) logits
in fp32 for the loss; an agent example labels only the model's own turns (about 16% of the
default recipe's tokens), so most of that work and memory is thrown away. `labelled_loss`
asks the model for the logits of the positions whose next token is labelled in some row of the
batch (transformers' `logits_to_keep`, given as positions) and takes the same token-mean
cross-entropy as `model(**batch).loss` (shift by one, IGNORE ignored), with the same gradients.

The call goes through the model's own forward, so a wrapper (peft, DDP under accelerate) does
its part as usual; with several rows the kept positions are the union of the rows' labelled
ones (length-bucketed batches hold a few rows at most).

A right-padded batch (sft.collate's) whose padding carries no label goes in without its
attention mask: in a causal LM a real position attends only to earlier positions, all real, and
takes its position from its index either way, so every labelled logit is the same (equal to
3e-6 in fp32). With a mask, transformers copies each key/value head for the query heads that
share it and torch's CPU attention scores every query against every key, the masked upper
triangle too; without one it reads the heads as they are and runs causal. On 2 idle
cores (`python bench/padded_attention.py`) a 2 x 2,048-token micro-batch with 300 padding took
15.3 s instead of 21.6, a 3 x 1,024 with 100 9.7 s instead of 11.2; in the default recipe
337 of 1,656 micro-batches are padded (1.2M of its 5.0M tokens). A batch padded otherwise
keeps its mask.
"""

from __future__ import annotations

from typing import Any

from wideseek.train.sft_data import IGNORE


def labelled_loss(model: Any, batch: dict[str, Any]) -> Any:
    """Token-mean cross-entropy over the labelled positions of `batch` (input_ids, labels,
    attention_mask; (B, T)): equal to `model(**batch).loss` (0 when nothing is labelled)."""
    import torch.nn.functional as F

    inputs = {k: v for k, v in batch.items() if k != "labels"}
    if "attention_mask" in inputs and causal_is_enough(inputs["attention_mask"], batch["labels"]):
        del inputs["attention_mask"]  # causal attention alone gives the labelled logits
    targets = batch["labels"][:, 1:]  # (B, T-1): position t predicts token t+1
    wanted = (targets != IGNORE).any(dim=0).nonzero().flatten()  # (K,)
    if wanted.numel() == 0:  # nothing labelled: a zero that still reaches every parameter
        return model(**inputs, logits_to_keep=1).logits.sum() * 0.0
    logits = model(**inputs, logits_to_keep=wanted).logits.float()  # (B, K, V)
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        targets[:, wanted].reshape(-1),
        ignore_index=IGNORE,
    )


def causal_is_enough(mask: Any, labels: Any) -> bool:
    """Whether the mask changes no labelled logit: right padding, none of it labelled."""
    return right_padded(mask) and not bool((labels[mask == 0] != IGNORE).any())


def right_padded(mask: Any) -> bool:
    """Whether every row of an attention mask (B, T) is ones then zeros (padding only after)."""
    import torch

    lengths = mask.sum(dim=1, keepdim=True)  # (B, 1)
    positions = torch.arange(mask.shape[1], device=mask.device)  # (T,)
    return bool((mask.bool() == (positions < lengths)).all())
