"""The llama.cpp engine on the default base and on an adapter merged into a GGUF file: greedy
tokens as the transformers engine's, logprobs by the same definition, concurrent requests as
each alone, an agent's next turn pre-filling only its new tokens, seeded sampling reproducible,
stop strings and budgets as LocalEngine's, sequences reused by other prompts, one-line errors.

llama.cpp's kernels round otherwise than torch's (its Q4_1 x Q8_1 dot products quantise the
activations): on the question below the two engines' greedy tokens part at the 19th token (a
near tie), the logprobs before it within 0.13.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import torch

from lora_adapters import save_random_adapter
from wideseek.llm.engine import EngineError, GenerateRequest, SamplingParams
from wideseek.llm.llamacpp_engine import LlamaCppEngine, gguf_for, prune_exports
from wideseek.llm.local import LocalEngine
from wideseek.llm.resolved_model import resolve_model
from wideseek.types import Message

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")

QUESTION = [
    Message(role="system", content="You answer in one short sentence."),
    Message(role="user", content="What is the capital of France, and which river runs through it?"),
]


@pytest.fixture(scope="module")
def engine() -> LlamaCppEngine:
    return LlamaCppEngine("default", slots=4)


@pytest.fixture(scope="module")
def reference() -> LocalEngine:
    return LocalEngine("default", dtype="fp32", int8_decode="off", speculate=0, device="cpu")


def greedy(n: int, **extra) -> SamplingParams:
    return SamplingParams(temperature=0, max_tokens=n, **extra)


async def ask(engine, prompt: list[int], sampling: SamplingParams):
    return await engine.generate(GenerateRequest(prompt_token_ids=prompt, sampling=sampling))


def prompt_of(engine, messages=QUESTION) -> list[int]:
    return engine.renderer.render_prompt(messages, None)


async def test_greedy_tokens_and_logprobs_are_the_transformers_engine_s(engine, reference):
    prompt = prompt_of(engine)
    assert prompt == prompt_of(reference)  # the same tokenizer and chat template
    ours = await ask(engine, prompt, greedy(12))
    theirs = await ask(reference, prompt, greedy(12))
    assert ours.token_ids == theirs.token_ids and ours.text == theirs.text
    assert ours.finish_reason == theirs.finish_reason
    gap = (torch.tensor(ours.logprobs) - torch.tensor(theirs.logprobs)).abs()
    assert gap.mean() < 0.05 and gap.max() < 0.25


async def test_concurrent_requests_decode_as_each_alone(engine):
    prompts = [
        prompt_of(engine, [Message(role="user", content=f"Count from {i} to {i + 5}.")])
        for i in range(4)
    ]
    alone = [await ask(engine, p, greedy(16)) for p in prompts]
    together = await asyncio.gather(*(ask(engine, p, greedy(16)) for p in prompts))
    assert [c.token_ids for c in together] == [c.token_ids for c in alone]
    assert engine.stats.steps > 0


async def test_a_next_turn_prefills_only_its_new_tokens(engine):
    first_prompt = prompt_of(engine)
    first = await ask(engine, first_prompt, greedy(12))
    follow = engine.renderer.render_tool_turn(first.token_ids, ["Paris is on the Seine."])
    second_prompt = first_prompt + first.token_ids + follow
    before = engine.stats.reused_tokens
    second = await ask(engine, second_prompt, greedy(12))
    reused = engine.stats.reused_tokens - before
    assert reused >= len(first_prompt) + len(first.token_ids) - 1
    # the same numbers as a prompt pre-filled whole, up to rounding: the reused keys/values of
    # the first turn's output were computed one token a step, not in one pre-fill pass (here
    # the third tokens are a near tie, -1.74 vs -1.72, and part)
    fresh = LlamaCppEngine("default", slots=1)
    try:
        whole = await ask(fresh, second_prompt, greedy(12))
    finally:
        await fresh.close()
    assert whole.token_ids[:2] == second.token_ids[:2]
    gap = torch.tensor(whole.logprobs[:2]) - torch.tensor(second.logprobs[:2])
    assert gap.abs().max() < 0.1


async def test_seeded_sampling_reproduces_and_seeds_differ(engine):
    prompt = prompt_of(engine)
    draws = [
        (await ask(engine, prompt, SamplingParams(temperature=1.0, max_tokens=20, seed=s)))
        for s in (7, 7, 8)
    ]
    assert draws[0].token_ids == draws[1].token_ids != draws[2].token_ids
    # the logprob of each sampled token under softmax(logits / T), as LocalEngine reports
    assert all(lp <= 0 for lp in draws[0].logprobs) and len(draws[0].logprobs) == 20


async def test_stop_strings_budgets_and_full_contexts(engine):
    prompt = prompt_of(engine)
    free = await ask(engine, prompt, greedy(24))
    word = free.text.split()[1]
    stopped = await ask(engine, prompt, greedy(24, stop=[word]))
    assert stopped.finish_reason == "stop" and stopped.text.endswith(word)
    assert len(stopped.token_ids) < len(free.token_ids)
    short = await ask(engine, prompt, greedy(3))
    assert short.finish_reason == "length" and short.token_ids == free.token_ids[:3]
    too_long = [1] * engine.context_length
    full = await ask(engine, too_long, greedy(5))
    assert full.finish_reason == "length" and full.token_ids == []


async def test_sequences_hold_a_whole_context_each_and_rotate():
    small = LlamaCppEngine("default", slots=2, context_length=512)
    try:
        assert small.context_length == 512
        # three requests of ~500 tokens through two sequences: each reuses a sequence whose
        # cells another prompt filled
        for i in range(3):
            prompt = [1] + [(100 + 7 * i + j) % 40_000 for j in range(500)]
            out = await ask(small, prompt, SamplingParams(temperature=0))
            assert out.finish_reason == "length" and len(out.token_ids) == 11  # up to 512
    finally:
        await small.close()
    with pytest.raises(EngineError, match="closed"):
        await ask(small, [1, 2, 3], greedy(2))


async def test_a_failed_decode_fails_its_requests_not_the_engine(engine, monkeypatch):
    import llama_cpp

    prompt = prompt_of(engine)
    real, calls = llama_cpp.llama_decode, []

    def failing_once(ctx, batch):
        calls.append(1)
        return -3 if len(calls) == 1 else real(ctx, batch)

    monkeypatch.setattr(llama_cpp, "llama_decode", failing_once)
    with pytest.raises(EngineError, match=r"llama.cpp decode failed \(status -3\)"):
        await ask(engine, prompt, greedy(4))
    again = await ask(engine, prompt, greedy(4))  # its sequence was started afresh
    assert again.token_ids == (await ask(engine, prompt, greedy(4))).token_ids
    assert len(again.token_ids) == 4


def test_an_adapter_is_merged_once_into_a_cached_gguf(tmp_path: Path, monkeypatch):
    from wideseek.llm import llamacpp_engine
    from wideseek.llm.base_model import portable_base_spec, resolve_base_model

    base = resolve_base_model("default")
    save_random_adapter(base, tmp_path / "adapter", portable_base_spec(base), ["v_proj"], r=2)
    adapter = resolve_model(tmp_path / "adapter")
    first = gguf_for(adapter, cache_dir=tmp_path / "cache")
    exported = []
    with monkeypatch.context() as patched:
        patched.setattr(llamacpp_engine, "export_gguf", lambda *a: exported.append(a))
        assert gguf_for(adapter, cache_dir=tmp_path / "cache") == first
    assert not exported  # not exported again
    assert gguf_for(adapter, "f16", cache_dir=tmp_path / "cache") != first
    assert gguf_for(resolve_model("default")).name == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_without_llama_cpp_python_the_error_is_one_line(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    needs = r"needs llama-cpp-python: .*pip install llama-cpp-python"
    with pytest.raises(EngineError, match=needs):
        LlamaCppEngine("default")


async def test_the_runtime_opens_it_for_engine_backend_llama_cpp(monkeypatch):
    from wideseek.config import Config
    from wideseek.runtime import close_engine, open_engine, package_model_dir

    monkeypatch.delenv("WIDESEEK_MODEL", raising=False)
    config = Config.model_validate({"engine": {"backend": "llama.cpp"}})
    opened = await open_engine(config)
    try:
        assert isinstance(opened, LlamaCppEngine)
        assert opened.resolved.dir == package_model_dir()  # the shipped adapter, merged
        assert opened.gguf_path.parent.name == "gguf"
        assert opened.generation_defaults()["temperature"] == 0.0  # what the model recommends
    finally:
        await close_engine(opened)


async def test_auto_opens_it_where_torch_would_decode_in_fp32(monkeypatch):
    from wideseek.config import Config
    from wideseek.llm import local_backend
    from wideseek.runtime import close_engine, open_engine

    monkeypatch.delenv("WIDESEEK_MODEL", raising=False)
    monkeypatch.setattr(local_backend, "torch_dtype_on_this_machine",
                        lambda: ("cpu", torch.float32))  # fmt: skip
    opened = await open_engine(Config())  # engine.backend: auto, the shipped model
    try:
        assert isinstance(opened, LlamaCppEngine) and opened.backend == "llama.cpp"
    finally:
        await close_engine(opened)


def test_the_cache_keeps_the_most_recently_used_exports(tmp_path):
    import os

    for age, name in enumerate(["new", "used", "old", "older"]):
        path = tmp_path / f"{name}.gguf"
        path.write_bytes(b"GGUF")
        os.utime(path, ns=(10**18 - age * 10**9, 10**18 - age * 10**9))
    (tmp_path / "notes.txt").write_text("not an export")
    prune_exports(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.gguf", "notes.txt", "used.gguf"]
