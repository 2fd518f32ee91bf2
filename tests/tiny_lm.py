"""A tiny tokenizer + random Qwen3 model for fast engine, server and training tests.

`make_tiny_lm(root)` trains a byte-level BPE on a few sentences and saves a random Qwen3 causal
LM with it under root/model (seconds, no downloads). `train_tokenizer` and `create_model` are its
two halves, for tests that need another tokenizer or other weights.

The tokenizer is in the Qwen3 chat format (llm/chat_template.py): control tokens special, the
markup tokens (tool calls, tool responses, think) single tokens kept when decoding. Its
pre-tokenisation keeps a value's tokens the same wherever it appears: words are letters plus at
most one leading space (punctuation never sticks to a word), digits come in runs of at most
`digit_group`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoTokenizer,
    GenerationConfig,
    PreTrainedTokenizerFast,
    Qwen3Config,
    Qwen3ForCausalLM,
)

from wideseek.llm import chat_template

CORPUS = [
    "Lima is the capital of Peru. Its population is 10,092,000 (2023).",
    "The currency of Chile is the Chilean peso; Santiago has 6,903,479 people.",
    '<tool_call>\n{"name": "search", "arguments": {"query": "capital of Peru"}}\n</tool_call>',
    "| Country | Capital | Currency |\n|---|---|---|\n| Peru | Lima | sol |",
    "Quito, Ecuador: 2,800,388 inhabitants. Bogotá, Colombia: 7,968,095.",
]

CONTROL_TOKENS = list(chat_template.CONTROL_TOKENS)
MARKUP_TOKENS = list(chat_template.MARKUP_TOKENS + chat_template.THINK_TOKENS)
END_OF_TURN_TOKENS = (chat_template.END_OF_TURN, chat_template.PAD)  # both stop generation


def make_tiny_lm(root: Path, max_positions: int = 256) -> Path:
    """Tokenizer (vocab <= 512) and model (hidden 64, 2 layers) under root/model."""
    train_tokenizer(CORPUS * 20, vocab_size=512, out_dir=root / "tok")
    # Untied embeddings: a random tied model only repeats its last token, a weak test input.
    size = ModelSize(
        hidden=64, layers=2, heads=4, max_positions=max_positions, tie_embeddings=False
    )
    create_model(root / "tok", root / "model", size=size, seed=0)
    return root / "model"


# --- tokenizer ---------------------------------------------------------------------------------
def _pretokenizer_pattern(digit_group: int) -> str:
    return (
        r"'(?:[sdmt]|ll|ve|re)"  # English contractions stay one piece
        rf"| ?[\p{{L}}\p{{M}}]+"  # a word with at most one leading space
        rf"| ?\p{{N}}{{1,{digit_group}}}"  # digits, in runs of at most `digit_group`
        r"| ?[^\s\p{L}\p{M}\p{N}]+"  # punctuation runs
        r"|\s+(?!\S)|\s+"  # whitespace; the last space before a word goes with the word
    )


def build_bpe_tokenizer(
    texts: Iterable[str], vocab_size: int, digit_group: int = 3, min_frequency: int = 2
) -> Tokenizer:
    """The raw `tokenizers` BPE, trained on `texts`, with the chat format's tokens whole."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_pretokenizer_pattern(digit_group)), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        # All 256 bytes are in the vocabulary, so any text can be encoded.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=CONTROL_TOKENS,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in MARKUP_TOKENS])
    return tok


def train_tokenizer(
    texts: Iterable[str], vocab_size: int, out_dir: str | Path, digit_group: int = 3
) -> PreTrainedTokenizerFast:
    """Train, wrap as a Hugging Face tokenizer with the chat template, save to `out_dir`."""
    hf = PreTrainedTokenizerFast(
        tokenizer_object=build_bpe_tokenizer(texts, vocab_size, digit_group=digit_group),
        model_max_length=4096,
        additional_special_tokens=["<|im_start|>"],
        clean_up_tokenization_spaces=False,
    )
    chat_template.attach_chat_template(hf)
    hf.save_pretrained(out_dir)
    return hf


# --- model -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSize:
    hidden: int = 256
    layers: int = 4
    heads: int = 4
    kv_heads: int | None = None  # None: same as heads (no grouped-query attention)
    intermediate: int | None = None  # None: 3 x hidden
    max_positions: int = 4096
    tie_embeddings: bool = True


def create_model(
    tokenizer_dir: str | Path, out_dir: str | Path, size: ModelSize | None = None, seed: int = 0
) -> Qwen3ForCausalLM:
    """A seeded random Qwen3 over the tokenizer's vocabulary, saved with it to `out_dir`."""
    size = size or ModelSize()
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=size.hidden,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        num_key_value_heads=size.kv_heads or size.heads,
        head_dim=size.hidden // size.heads,
        intermediate_size=size.intermediate or 3 * size.hidden,
        max_position_embeddings=size.max_positions,
        tie_word_embeddings=size.tie_embeddings,
        bos_token_id=None,
        eos_token_id=[
            tokenizer.convert_tokens_to_ids(t)
            for t in (chat_template.END_OF_TURN, chat_template.PAD)
        ],
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id
    )
    model.save_pretrained(out_dir)  # safetensors
    tokenizer.save_pretrained(out_dir)
    return model
