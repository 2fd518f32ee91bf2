"""Decode-step attention that reads each key/value head once (grouped-query attention).

transformers' "sdpa" attention, given an attention mask on a CPU, repeats every key/value head
for the query heads that share it (`repeat_kv`: SmolLM2-135M's 3 kv heads become 9) before
calling `scaled_dot_product_attention`, copying the whole cache of every layer at every decode
step. For a step's single query token per row, the query heads of one group can instead stand
in the query-length axis: (b, kv_heads * g, 1, d) -> (b, kv_heads, g, d) attends to the
(b, kv_heads, T, d) cache as it is, with the same (b, 1, 1, T) mask, and gives the same numbers
(each query row is independent in attention). Every other call (pre-fill chunks, training,
`generate`) goes to transformers' own sdpa function unchanged.

`use_gqa_decode_attention(model)` registers the function under `ATTENTION` with transformers'
public AttentionInterface / AttentionMaskInterface and switches the model to it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

ATTENTION = "wideseek_gqa_sdpa"


def gqa_decode_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    b, heads, q_len, dim = query.shape
    kv_heads = key.shape[1]
    if q_len != 1 or heads == kv_heads or dropout or module.training:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout, scaling, is_causal, **kwargs
        )
    grouped = query.reshape(b, kv_heads, heads // kv_heads, dim)  # the group's heads as queries
    out = F.scaled_dot_product_attention(
        grouped, key, value, attn_mask=attention_mask, scale=scaling
    )
    return out.reshape(b, heads, 1, dim).transpose(1, 2).contiguous(), None


def use_gqa_decode_attention(model) -> None:
    """Make `model` (sdpa attention) use `gqa_decode_attention`; others are left as they are."""
    if model.config._attn_implementation != "sdpa":
        return
    AttentionInterface.register(ATTENTION, gqa_decode_attention)
    AttentionMaskInterface.register(ATTENTION, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])
    model.set_attn_implementation(ATTENTION)
