"""A tiny tokenizer + random Qwen3 model for fast engine, server and tokenizer tests."""

from __future__ import annotations

from pathlib import Path

from wideseek.train.tiny_model import ModelSize, create_model
from wideseek.train.tokenizer import train_tokenizer

CORPUS = [
    "Lima is the capital of Peru. Its population is 10,092,000 (2023).",
    "The currency of Chile is the Chilean peso; Santiago has 6,903,479 people.",
    '<tool_call>\n{"name": "search", "arguments": {"query": "capital of Peru"}}\n</tool_call>',
    "| Country | Capital | Currency |\n|---|---|---|\n| Peru | Lima | sol |",
    "Quito, Ecuador: 2,800,388 inhabitants. Bogotá, Colombia: 7,968,095.",
]


def make_tiny_lm(root: Path, max_positions: int = 256) -> Path:
    """Tokenizer (vocab <= 512) and model (hidden 64, 2 layers) under root/model."""
    train_tokenizer(CORPUS * 20, vocab_size=512, out_dir=root / "tok")
    # Untied embeddings: a random tied model only repeats its last token, a weak test input.
    size = ModelSize(
        hidden=64, layers=2, heads=4, max_positions=max_positions, tie_embeddings=False
    )
    create_model(root / "tok", root / "model", size=size, seed=0)
    return root / "model"
