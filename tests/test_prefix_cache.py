"""An agent's next turn reuses the keys/values of its last one, and changes nothing it outputs."""

import asyncio
import random
from pathlib import Path

import pytest
import torch

from tiny_lm import make_tiny_lm
from wideseek.llm.base import GenerateRequest, SamplingParams
from wideseek.llm.local import LocalEngine
from wideseek.llm.prefix_cache import MIN_REUSE, PrefixCache


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return make_tiny_lm(tmp_path_factory.mktemp("lm"), max_positions=512)


def engines(model_dir: Path) -> tuple[LocalEngine, LocalEngine]:
    """(with the prefix cache, without): fp32, so both see the same weights exactly."""
    on = LocalEngine(model_dir, device="cpu", dtype="fp32", batch_window_s=0.02, int8_decode="off")
    off = LocalEngine(
        model_dir, device="cpu", dtype="fp32", prefix_cache_tokens=0, int8_decode="off"
    )
    return on, off


def request(ids: list[int], **sampling) -> GenerateRequest:
    return GenerateRequest(prompt_token_ids=ids, sampling=SamplingParams(**sampling))


async def agent_turns(engine: LocalEngine, start: list[int], seed: int, turns: int) -> list:
    """An agent: each prompt is the last prompt + what it generated + a 'tool result'."""
    rng = random.Random(seed)
    prompt, outs = list(start), []
    for turn in range(turns):
        sampling = {"temperature": 0} if seed % 2 else {"temperature": 1.0, "seed": seed + turn}
        out = await engine.generate(request(prompt, max_tokens=12, **sampling))
        outs.append(out)
        tool_result = [rng.randrange(10, 400) for _ in range(rng.randrange(3, 20))]
        prompt = prompt + out.token_ids + tool_result
    return outs


async def test_turns_are_token_identical_with_and_without_the_cache(model_dir):
    on, off = engines(model_dir)
    starts = [[random.Random(i).randrange(10, 400) for _ in range(40 + 7 * i)] for i in range(4)]
    # four agents at once, so warm rows (a later turn) and cold ones share batches
    with_cache = await asyncio.gather(*(agent_turns(on, s, i, 4) for i, s in enumerate(starts)))
    without = await asyncio.gather(*(agent_turns(off, s, i, 4) for i, s in enumerate(starts)))
    for agent_on, agent_off in zip(with_cache, without, strict=True):
        for a, b in zip(agent_on, agent_off, strict=True):
            assert a.token_ids == b.token_ids
            assert a.finish_reason == b.finish_reason
            assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
    assert on.prefix_cache.hits == 4 * 3  # every turn after the first
    assert off.prefix_cache.hits == 0 and len(off.prefix_cache) == 0


async def test_a_reused_prefix_is_the_whole_last_turn(model_dir):
    on, _ = engines(model_dir)
    prompt = list(range(10, 60))
    first = await on.generate(request(prompt, temperature=0, max_tokens=8))
    # the stored entry: the prompt and every generated token but the last one
    assert on.prefix_cache.tokens == len(prompt) + len(first.token_ids) - 1
    await on.generate(request(prompt + first.token_ids + [11, 12], temperature=0, max_tokens=4))
    assert on.prefix_cache.reused_tokens == len(prompt) + len(first.token_ids) - 1


async def test_new_weights_forget_the_cached_keys(model_dir):
    on, _ = engines(model_dir)
    await on.generate(request(list(range(10, 60)), temperature=0, max_tokens=4))
    assert len(on.prefix_cache) == 1
    on.load_state_dict(on.model.state_dict())
    assert len(on.prefix_cache) == 0


def kv(n: int) -> tuple:
    return ((torch.zeros(1, 1, n, 2), torch.zeros(1, 1, n, 2)),)


def test_cache_takes_the_longest_proper_prefix_once():
    cache = PrefixCache(max_tokens=1000)
    short, long = list(range(40)), list(range(60))
    cache.put(short, kv(40))
    cache.put(long, kv(60))
    cache.put([7] * 50, kv(50))  # not a prefix of what is asked below
    hit = cache.take(list(range(80)))
    assert hit is not None and hit[1] == 60
    assert cache.take(list(range(60))) is not None  # `short`; `long` was taken already
    assert cache.take(list(range(40))) is None  # an entry must be a *proper* prefix
    assert cache.tokens == 50


def test_cache_evicts_the_oldest_entries_over_its_budget():
    cache = PrefixCache(max_tokens=100)
    for start in (0, 1000, 2000):
        cache.put(list(range(start, start + 40)), kv(40))
    assert len(cache) == 2 and cache.tokens == 80
    assert cache.take(list(range(0, 50))) is None  # the first went
    cache.put(list(range(MIN_REUSE - 1)), kv(MIN_REUSE - 1))  # too short to be worth keeping
    assert len(cache) == 2
