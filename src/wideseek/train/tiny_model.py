"""Create a randomly initialised Qwen3 causal LM of a chosen size: the start of SFT, and tests.

`create_model(tokenizer_dir, out_dir, ...)` builds a `Qwen3ForCausalLM` from a `Qwen3Config`
sized by arguments, with the vocabulary, eos and pad ids taken from the tokenizer, and saves
model + tokenizer with `save_pretrained` (safetensors) so any Hugging Face loader, vLLM or SGLang
can read the directory unchanged. Seeded: the same arguments give the same weights.

This module knows the architecture, not training data or agents.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoTokenizer,
    GenerationConfig,
    PreTrainedTokenizerBase,
    Qwen3Config,
    Qwen3ForCausalLM,
)

from wideseek.llm.chat_template import END_OF_TURN, PAD
from wideseek.train.tokenizer import save_atomically


@dataclass(frozen=True)
class ModelSize:
    hidden: int = 256
    layers: int = 4
    heads: int = 4
    kv_heads: int | None = None  # None: same as heads (no grouped-query attention)
    intermediate: int | None = None  # None: 3 x hidden
    max_positions: int = 4096
    tie_embeddings: bool = True  # halves the parameters of a small-vocabulary model


# Named sizes for `wideseek train init`; parameters at vocabulary 8,192 with tied embeddings,
# and CPU training speed measured on the 2-core development machine (see the issue).
MODEL_SIZES = {
    "tiny": ModelSize(hidden=256, layers=4, heads=4),  # ~5M, ~2,300 tokens/s
    "small": ModelSize(hidden=384, layers=8, heads=6),  # ~18M, ~700 tokens/s
    "base": ModelSize(hidden=512, layers=8, heads=8),  # ~31M
}


def qwen3_config(
    size: ModelSize, tokenizer: PreTrainedTokenizerBase, vocab_size: int | None = None
) -> Qwen3Config:
    """A Qwen3Config of `size` whose vocabulary covers the tokenizer (optionally padded up)."""
    eos_ids = [tokenizer.convert_tokens_to_ids(t) for t in (END_OF_TURN, PAD)]
    return sized_config(
        size,
        vocab_size=max(len(tokenizer), vocab_size or 0),
        bos_token_id=None,
        eos_token_id=eos_ids,
        pad_token_id=tokenizer.pad_token_id,
    )


def sized_config(size: ModelSize, vocab_size: int, **special_ids: Any) -> Qwen3Config:
    """The architecture of `size` over `vocab_size` tokens (no tokenizer needed: benchmarks)."""
    if size.hidden % size.heads:
        raise ValueError(f"hidden ({size.hidden}) must be a multiple of heads ({size.heads})")
    return Qwen3Config(
        vocab_size=vocab_size,
        hidden_size=size.hidden,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        num_key_value_heads=size.kv_heads or size.heads,
        head_dim=size.hidden // size.heads,
        intermediate_size=size.intermediate or 3 * size.hidden,
        max_position_embeddings=size.max_positions,
        tie_word_embeddings=size.tie_embeddings,
        **special_ids,
    )


def create_model(
    tokenizer_dir: str | Path,
    out_dir: str | Path,
    size: ModelSize | None = None,
    vocab_size: int | None = None,
    seed: int = 0,
) -> Qwen3ForCausalLM:
    """Build, save (model, generation config, tokenizer) to `out_dir` atomically, and return."""
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = qwen3_config(size or ModelSize(), tokenizer, vocab_size)
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id
    )
    save_model_dir(model, tokenizer, Path(out_dir))
    return model


def save_model_dir(model, tokenizer, out_dir: Path) -> None:
    """Model and tokenizer side by side in one directory, replaced atomically."""

    def write(path: Path) -> None:
        model.save_pretrained(path)  # safetensors by default
        tokenizer.save_pretrained(path)

    save_atomically(write, out_dir)


def count_parameters(model: torch.nn.Module) -> int:
    """Distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
