"""The SFT loss with the vocabulary projection computed only where a label is.

A causal LM's forward projects every position onto the vocabulary (576 → 49,152 for
SmolLM2-135M: a fifth of the model's multiply-adds per token) and keeps the (B, T, V) logits
in fp32 for the loss; an agent example labels only the model's own turns (about 16% of the
default recipe's tokens), so most of that work and memory is thrown away. `labelled_loss`
runs the decoder, keeps the hidden states whose next token is labelled, and projects those
alone: the same token-mean cross-entropy as `model(**batch).loss` (transformers' causal-LM
loss: shift by one, ignore IGNORE), with the same gradients, for less time and memory.

It takes any transformers causal LM whose logits are `lm_head(decoder(...))` — peft-wrapped
too — and falls back to the model's own forward for one that is not (a final logit
soft-capping or scaling would be skipped otherwise).
"""

from __future__ import annotations

from typing import Any

from wideseek.train.sft_data import IGNORE

# Causal LMs whose forward adds nothing between the decoder's last hidden state and lm_head.
_PLAIN_HEAD = {"llama", "qwen2", "qwen3", "mistral", "smollm3"}


def _plain_head(model: Any) -> bool:
    config = getattr(model, "config", None)
    return getattr(config, "model_type", None) in _PLAIN_HEAD and not getattr(
        config, "final_logit_softcapping", None
    )


def labelled_loss(model: Any, batch: dict[str, Any]) -> Any:
    """Token-mean cross-entropy over the labelled positions of `batch` (input_ids, labels,
    attention_mask; (B, T)): equal to `model(**batch).loss`."""
    import torch.nn.functional as F

    if not _plain_head(model):
        return model(**batch).loss
    labels = batch["labels"]
    hidden = model.get_decoder()(
        input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask")
    ).last_hidden_state  # (B, T, H)
    targets = labels[:, 1:]  # (B, T-1): position t predicts token t+1
    keep = targets != IGNORE
    picked = hidden[:, :-1][keep]  # (N, H)
    logits = model.get_output_embeddings()(picked).float()  # (N, V)
    if logits.shape[0] == 0:  # nothing labelled: a zero that still reaches every parameter
        return hidden.sum() * 0.0
    return F.cross_entropy(logits, targets[keep])
