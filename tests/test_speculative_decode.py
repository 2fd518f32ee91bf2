"""Prompt-lookup speculation (llm/batched_decode): each greedy row of a batch checks guesses
copied from its own context in the step's pass; its tokens and logprobs are plain greedy
decoding's."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tiny_lm import make_tiny_lm
from wideseek.llm.batched_decode import lookup_draft
from wideseek.llm.engine import GenerateRequest, SamplingParams
from wideseek.llm.local import LocalEngine

# A prompt that repeats itself, so the guesses have something to copy from.
LOOP = [8, 9, 10, 11, 12, 13, 14, 15, 16] * 3 + [8, 9, 10]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return make_tiny_lm(tmp_path_factory.mktemp("lm"))


def engine(
    model_dir: Path, speculate: int, prefix_cache_tokens: int = 0, speculate_batch: int = 0
) -> LocalEngine:
    # fp32: a pass over several tokens and one over one round alike (bf16 logits of a random
    # model tie, and a tie may break either way)
    return LocalEngine(
        model_dir, device="cpu", dtype="fp32", int8_decode="off", speculate=speculate,
        prefix_cache_tokens=prefix_cache_tokens, speculate_batch=speculate_batch,
    )  # fmt: skip


def greedy(ids: list[int], n: int) -> GenerateRequest:
    return GenerateRequest(
        prompt_token_ids=ids, sampling=SamplingParams(temperature=0, max_tokens=n)
    )


def test_lookup_draft_copies_what_followed_the_latest_match():
    assert lookup_draft([1, 2, 3, 9, 8, 1, 2, 3], 3) == [9, 8, 1]
    assert lookup_draft([1, 2, 3, 7, 5, 2, 3, 6, 0, 2, 3], 2) == [6, 0]  # latest, by 2-gram
    assert lookup_draft([4, 5, 6, 7], 3) == []  # nothing repeats
    assert lookup_draft([1, 2, 1, 2], 5) == [1, 2]  # up to what the context holds
    assert lookup_draft([1, 2, 3, 1, 2, 3], 0) == []


@pytest.mark.parametrize("n", [1, 7, 40])
async def test_same_tokens_and_logprobs_as_plain_greedy(model_dir, n):
    plain, fast = engine(model_dir, 0), engine(model_dir, 8)
    a = await plain.generate(greedy(LOOP, n))
    b = await fast.generate(greedy(LOOP, n))
    assert b.token_ids == a.token_ids and len(b.token_ids) <= n
    assert b.finish_reason == a.finish_reason
    assert b.logprobs == pytest.approx(a.logprobs, abs=1e-4)
    if n == 40:
        assert fast.stats.accepted > 0  # guesses were kept: fewer passes than tokens
        assert fast.stats.steps < plain.stats.steps


async def test_a_turn_after_a_speculative_one_reuses_its_cache_correctly(model_dir):
    """keep_kv: a row that ends inside a checked guess leaves with the right keys/values, so
    the next turn (prompt = previous prompt + output + more) decodes as without guesses."""
    outs = []
    for speculate in (0, 8):
        e = engine(model_dir, speculate, prefix_cache_tokens=65_536)
        first = await e.generate(greedy(LOOP, 23))
        second = await e.generate(greedy(LOOP + first.token_ids + [5, 6, 7] + LOOP[:6], 30))
        outs.append((first.token_ids, second.token_ids, second.logprobs))
        assert e.stats.reused_tokens > 0  # the second turn took the first's cache
    assert outs[1][:2] == outs[0][:2]
    assert outs[1][2] == pytest.approx(outs[0][2], abs=1e-4)


async def test_sampled_rows_decode_one_token_a_step(model_dir):
    e = engine(model_dir, 8)
    sampled = GenerateRequest(
        prompt_token_ids=LOOP, sampling=SamplingParams(temperature=1.0, max_tokens=20, seed=1)
    )
    await e.generate(sampled)
    assert e.stats.drafted == 0


async def test_a_batch_speculates_row_by_row_with_plain_decoding_tokens(model_dir):
    """Greedy rows of one batch check their own guesses in the step's one pass (rows with
    fewer or no guesses padded), beside a sampled row; every row's tokens and logprobs are
    those of plain decoding, rows finishing inside their guesses included."""
    requests = [
        greedy(LOOP, 40),
        greedy(LOOP[3:], 7),
        greedy([4, 5, 6, 7, 20, 21], 25),  # nothing to copy at first
        greedy(LOOP[:12] + LOOP, 33),
        GenerateRequest(
            prompt_token_ids=LOOP[5:],
            sampling=SamplingParams(temperature=1.0, max_tokens=30, seed=3),
        ),
    ]
    outs, stats = [], []
    for speculate in (0, 8):
        e = engine(model_dir, speculate)
        outs.append(await asyncio.gather(*(e.generate(r) for r in requests)))
        stats.append(e.stats)
    for plain, fast in zip(*outs, strict=True):
        assert fast.token_ids == plain.token_ids
        assert fast.finish_reason == plain.finish_reason
        assert fast.logprobs == pytest.approx(plain.logprobs, abs=1e-4)
    assert stats[1].accepted > 0 and stats[1].steps < stats[0].steps
    assert stats[1].new_tokens == stats[0].new_tokens


async def test_concurrent_turns_after_speculative_ones_reuse_their_caches(model_dir):
    """keep_kv in a batch: rows that end inside their kept guesses leave with the right
    keys/values, so each conversation's next turn decodes as without guesses."""
    prompts = [LOOP, [*LOOP[4:], 3, 3]]
    outs = []
    for speculate in (0, 8):
        e = engine(model_dir, speculate, prefix_cache_tokens=65_536)
        firsts = await asyncio.gather(*(e.generate(greedy(p, 19)) for p in prompts))
        seconds = await asyncio.gather(
            *(
                e.generate(greedy(p + f.token_ids + [5, 6, 7] + LOOP[:6], 30))
                for p, f in zip(prompts, firsts, strict=True)
            )
        )
        assert e.stats.reused_tokens > 0
        outs.append(
            [(f.token_ids, s.token_ids, s.logprobs) for f, s in zip(firsts, seconds, strict=True)]
        )
    for plain, fast in zip(*outs, strict=True):
        assert fast[:2] == plain[:2]
        assert fast[2] == pytest.approx(plain[2], abs=1e-4)


async def test_rows_decoding_side_by_side_keep_guesses(model_dir):
    """Two greedy rows that run together from first token to last: passes < tokens a row."""
    e = engine(model_dir, 8)
    outs = await asyncio.gather(e.generate(greedy(LOOP, 30)), e.generate(greedy(LOOP[1:], 30)))
    assert [len(o.token_ids) for o in outs] == [30, 30]
    assert e.stats.accepted > 0 and e.stats.steps < 29


async def test_no_guesses_while_the_batch_is_larger_than_speculate_batch(model_dir):
    e = engine(model_dir, 8, speculate_batch=1)
    await asyncio.gather(e.generate(greedy(LOOP, 30)), e.generate(greedy(LOOP[1:], 30)))
    assert e.stats.drafted == 0 and e.stats.steps == 29  # the first token needs no pass
