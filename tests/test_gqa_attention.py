"""Grouped-query decode attention: the numbers of transformers' sdpa, without repeating heads."""

import pytest
import torch

from tiny_lm import CORPUS, ModelSize, create_model, train_tokenizer
from wideseek.llm.batched_decode import BatchDecoder, DecodeRow
from wideseek.llm.engine import SamplingParams
from wideseek.llm.gqa_attention import ATTENTION, use_gqa_decode_attention
from wideseek.llm.local import LocalEngine


@pytest.fixture(scope="module")
def gqa_model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("gqa")
    train_tokenizer(CORPUS * 20, vocab_size=512, out_dir=root / "tok")
    size = ModelSize(hidden=64, layers=2, heads=4, kv_heads=2, max_positions=256,
                     tie_embeddings=False)  # fmt: skip
    create_model(root / "tok", root / "model", size=size, seed=0)
    return root / "model"


def decode_logits(engine: LocalEngine, prompts: list[list[int]], steps: int) -> torch.Tensor:
    rows = [
        DecodeRow(
            prompt=p, params=SamplingParams(temperature=0), max_new=99, generator=torch.Generator()
        )
        for p in prompts
    ]
    decoder = BatchDecoder(engine.model, engine.eos_ids)
    decoder.add(rows)
    logits = []
    for _ in range(steps):
        decoder.step()
        logits.append(decoder.logits.clone())
    return torch.stack(logits)


def test_decode_steps_match_transformers_sdpa(gqa_model_dir):
    engine = LocalEngine(gqa_model_dir, device="cpu", dtype="fp32", int8_decode="off")
    assert engine.model.config._attn_implementation == ATTENTION  # the engine switched it
    prompts = [[5, 6, 7, 8], [9] * 20, [30, 31]]  # rows of different lengths: masked columns
    ours = decode_logits(engine, prompts, steps=6)
    engine.model.set_attn_implementation("sdpa")
    reference = decode_logits(engine, prompts, steps=6)
    assert torch.allclose(ours, reference, atol=1e-5)


def test_only_sdpa_models_are_switched(gqa_model_dir):
    engine = LocalEngine(gqa_model_dir, device="cpu", dtype="fp32", int8_decode="off")
    engine.model.set_attn_implementation("eager")
    use_gqa_decode_attention(engine.model)
    assert engine.model.config._attn_implementation == "eager"
