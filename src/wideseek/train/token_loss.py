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
"""

from __future__ import annotations

from typing import Any

from wideseek.train.sft_data import IGNORE


def labelled_loss(model: Any, batch: dict[str, Any]) -> Any:
    """Token-mean cross-entropy over the labelled positions of `batch` (input_ids, labels,
    attention_mask; (B, T)): equal to `model(**batch).loss` (0 when nothing is labelled)."""
    import torch.nn.functional as F

    inputs = {k: v for k, v in batch.items() if k != "labels"}
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
