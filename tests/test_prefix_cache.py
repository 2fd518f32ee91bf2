"""An agent's next turn reuses the keys/values of its last one, and changes nothing it outputs."""

import asyncio
import random
from pathlib import Path

import pytest
import torch

from tiny_lm import make_tiny_lm
from wideseek.llm.engine import GenerateRequest, SamplingParams
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


async def test_subagents_started_together_reuse_the_first_ones_prompt(model_dir):
    on, off = engines(model_dir)
    shared = [random.Random(9).randrange(10, 400) for _ in range(80)]  # a system prompt
    prompts = [[*shared, 10 + i, 20 + i, 30 + i] for i in range(4)]  # then each one's subtask

    async def run(engine: LocalEngine) -> list:
        return await asyncio.gather(
            *(engine.generate(request(p, temperature=0, max_tokens=8)) for p in prompts)
        )

    with_cache, without = await run(on), await run(off)
    assert [o.token_ids for o in with_cache] == [o.token_ids for o in without]
    assert list(on.batch_sizes) == [4]  # admitted together, pre-filled one after the other
    assert on.prefix_cache.hits == 3 and on.prefix_cache.reused_tokens == 3 * len(shared)


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


def test_lookup_gives_the_longest_shared_prefix_and_keeps_the_entry():
    cache = PrefixCache(max_tokens=1000)
    cache.put(list(range(40)), kv(40))
    cache.put([7] * 50, kv(50))  # shares nothing with what is asked below
    hit = cache.lookup(list(range(80)))
    assert hit is not None and hit[1] == 40 and hit[0][0][0].shape[2] == 40
    sibling = list(range(35)) + [999] * 10  # shares 35 tokens, then differs
    hit = cache.lookup(sibling)
    assert hit is not None and hit[1] == 35 and hit[0][0][0].shape[2] == 35  # sliced
    assert cache.lookup(list(range(40)))[1] == 39  # the last prompt token must be pre-filled
    assert cache.lookup([7] * 20 + [1] * 20) is None  # 20 shared tokens < MIN_REUSE
    assert len(cache) == 2 and cache.hits == 3


def test_a_longer_entry_replaces_its_prefixes():
    cache = PrefixCache(max_tokens=1000)
    cache.put(list(range(40)), kv(40))
    cache.put(list(range(60)), kv(60))  # the same agent's next turn
    cache.put(list(range(35)) + [5] * 10, kv(45))  # a sibling: shares a prefix, is not one
    assert len(cache) == 2 and cache.tokens == 105


def test_cache_evicts_the_oldest_entries_over_its_budget():
    cache = PrefixCache(max_tokens=100)
    for start in (0, 1000, 2000):
        cache.put(list(range(start, start + 40)), kv(40))
    assert len(cache) == 2 and cache.tokens == 80
    assert cache.lookup(list(range(0, 50))) is None  # the first went
    cache.put(list(range(MIN_REUSE - 1)), kv(MIN_REUSE - 1))  # too short to be worth keeping
    assert len(cache) == 2
