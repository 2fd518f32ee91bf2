"""A tiny byte-level BPE tokenizer with wideseek's chat template, for token-path tests.

`build_tiny_tokenizer(dir)` trains BPE on a few sentences (seconds, no downloads), adds the chat
template and special tokens with `attach_chat_template`, saves it with `save_pretrained` and
returns the directory, loadable by `AutoTokenizer.from_pretrained` / `HFChatRenderer`.
It has no knowledge of any real model's vocabulary; only the format matters in tests.
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from wideseek.llm.chat_template import CONTROL_TOKENS, attach_chat_template

CORPUS = [
    "What is the capital of Peru? The capital of Peru is Lima.",
    "Search for every country in South America with its capital and currency.",
    '{"name": "search", "arguments": {"query": "capital of Chile", "count": 3}}',
    "| country | capital |\n|---|---|\n| Chile | Santiago |",
    "You are a helpful assistant. Use the tools to find facts, then answer.",
]


def build_tiny_tokenizer(directory: str | Path, vocab_size: int = 600) -> Path:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(CONTROL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    fast = attach_chat_template(PreTrainedTokenizerFast(tokenizer_object=tok))
    fast.model_max_length = 4096
    directory = Path(directory)
    fast.save_pretrained(directory)
    return directory


# One tool schema for rendering tests: the chat template shows it in the system turn.
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "search",
            "description": "Search the corpus.",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        },
    }
]
