import asyncio
import warnings
from pathlib import Path

import pytest
import torch

from tiny_lm import ModelSize, create_model, make_tiny_lm
from wideseek.llm.batched_decode import BatchDecoder, DecodeRow
from wideseek.llm.engine import Completion, EngineError, GenerateRequest, SamplingParams
from wideseek.llm.local import LocalEngine, token_logprobs
from wideseek.llm.model_loading import quiet_peft
from wideseek.llm.toolcall import format_tool_call
from wideseek.types import Message, ToolCall

PROMPTS = [[5, 6, 7], [8, 9, 10, 11, 12, 13, 14, 15, 16], [20] * 30, [100, 3]]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return make_tiny_lm(tmp_path_factory.mktemp("lm"))


@pytest.fixture
def engine(model_dir) -> LocalEngine:
    return LocalEngine(model_dir, device="cpu", batch_window_s=0.05, int8_decode="off")


def request(ids, **sampling) -> GenerateRequest:
    return GenerateRequest(prompt_token_ids=ids, sampling=SamplingParams(**sampling))


def naive_greedy(engine: LocalEngine, ids: list[int], n: int) -> list[int]:
    out = engine.model.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False)
    return out[0, len(ids) :].tolist()


def expected_greedy(engine: LocalEngine, ids: list[int], n: int) -> list[int]:
    """naive_greedy, cut after the first eos (generate pads finished rows past it)."""
    ref = naive_greedy(engine, ids, n)
    eos = [i for i, t in enumerate(ref) if t in engine.eos_ids]
    return ref[: eos[0] + 1] if eos else ref


async def test_batched_greedy_matches_naive_generate_token_for_token(engine):
    budgets = [12, 5, 16, 9]  # rows leave the batch at different steps
    outs = await asyncio.gather(
        *(
            engine.generate(request(p, temperature=0, max_tokens=n))
            for p, n in zip(PROMPTS, budgets, strict=True)
        )
    )
    assert list(engine.batch_sizes) == [len(PROMPTS)]  # one batch, not one call per request
    for prompt, n, out in zip(PROMPTS, budgets, outs, strict=True):
        expected = expected_greedy(engine, prompt, n)
        assert out.token_ids == expected
        assert out.finish_reason == ("stop" if expected[-1] in engine.eos_ids else "length")
        assert out.usage.prompt_tokens == len(prompt)
        assert out.usage.completion_tokens == len(expected)


def greedy_row(prompt: list[int], n: int) -> DecodeRow:
    params = SamplingParams(temperature=0)
    return DecodeRow(prompt=prompt, params=params, max_new=n, generator=torch.Generator())


def test_rows_joining_a_running_batch_decode_as_if_alone(engine):
    decoder = BatchDecoder(engine.model, engine.eos_ids)
    first = greedy_row(PROMPTS[2], 5)  # the longest prompt, finishing first: its slot is refilled
    decoder.add([first])
    done = decoder.step() + decoder.step()
    joiners = [greedy_row(PROMPTS[1], 10), greedy_row(PROMPTS[0], 12)]  # shorter prompts
    decoder.add(joiners)
    assert len(decoder) == 3 - len(done)
    while len(decoder):
        done += decoder.step()
        # every row sits in its own slot, the cache holding exactly its tokens so far
        for i, row in enumerate(decoder.rows):
            assert int(decoder.lengths[i]) == len(row.prompt) + len(row.ids)
    assert set(map(id, done)) == {id(first), *map(id, joiners)}
    for r in (first, *joiners):
        assert r.ids == expected_greedy(engine, r.prompt, r.max_new)


def test_removed_rows_leave_the_others_untouched(engine):
    decoder = BatchDecoder(engine.model, engine.eos_ids)
    rows = [greedy_row(p, 10) for p in PROMPTS]
    decoder.add(rows)
    decoder.step()
    decoder.remove([rows[2]])  # the last row moves into its slot
    assert rows[2] not in decoder.rows
    while len(decoder):
        decoder.step()
    assert len(rows[2].ids) == 1
    for r in rows[:2] + rows[3:]:
        assert r.ids == expected_greedy(engine, r.prompt, r.max_new)


def test_a_peft_model_decodes_through_the_cache_keyword_its_base_model_names(engine):
    # RL samples with the learner's peft model, whose forward takes **kwargs: the decoder
    # must still pass the cache under the base model's own name (transformers 5 warns on
    # every forward given the old `past_key_values`, flooding the run's log)
    from peft import LoraConfig, get_peft_model

    plain = BatchDecoder(engine.model, engine.eos_ids)
    with quiet_peft():
        wrapped = get_peft_model(engine.model, LoraConfig(r=2, target_modules=["q_proj"])).eval()
    decoder = BatchDecoder(wrapped, engine.eos_ids)
    assert decoder.cache_kw == plain.cache_kw
    rows = [greedy_row(p, 6) for p in PROMPTS[:2]]
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        decoder.add(rows)
        while len(decoder):
            decoder.step()
    wrapped.unload()  # LoRA's B starts at 0: the same tokens as the plain model's
    for r in rows:
        assert r.ids == expected_greedy(engine, r.prompt, r.max_new)


async def test_logprobs_are_those_of_the_tempered_distribution(engine):
    out = await engine.generate(request(PROMPTS[1], temperature=0.7, max_tokens=10, seed=3))
    ids = torch.tensor([PROMPTS[1] + out.token_ids])
    logits = engine.model(ids).logits[0, len(PROMPTS[1]) - 1 : -1]  # (n, V)
    expected = token_logprobs(logits, torch.tensor(out.token_ids), 0.7)
    assert torch.allclose(torch.tensor(out.logprobs), expected, atol=1e-4)
    assert not torch.allclose(expected, token_logprobs(logits, torch.tensor(out.token_ids), 1.0))


async def test_seeded_sampling_is_deterministic_alone_or_batched(engine):
    alone = await engine.generate(request(PROMPTS[0], max_tokens=12, seed=7))
    batched = await asyncio.gather(
        engine.generate(request(PROMPTS[2], max_tokens=12, seed=1)),
        engine.generate(request(PROMPTS[0], max_tokens=12, seed=7)),
        engine.generate(request(PROMPTS[0], max_tokens=12, seed=8)),
    )
    assert batched[1].token_ids == alone.token_ids
    assert batched[2].token_ids != alone.token_ids


async def test_tiny_top_p_is_greedy(engine):
    sampled = await engine.generate(request(PROMPTS[1], top_p=1e-6, max_tokens=8, seed=0))
    greedy = await engine.generate(request(PROMPTS[1], temperature=0, max_tokens=8))
    assert sampled.token_ids == greedy.token_ids


async def test_top_k_samples_only_the_k_likeliest_tokens(engine):
    prompt = PROMPTS[1]
    logits = engine.model(torch.tensor([prompt])).logits[0, -1]  # (V,)
    # the 3 likeliest, and any token tied with the third (bf16 logits of a random model tie)
    best = set((logits >= logits.topk(3).values[-1]).nonzero().flatten().tolist())
    firsts = {
        (await engine.generate(request(prompt, top_k=3, max_tokens=1, seed=s))).token_ids[0]
        for s in range(40)
    }
    assert firsts <= best and len(firsts) > 1  # within the 3, and not only the greedy one
    one = await engine.generate(request(prompt, top_k=1, max_tokens=8, seed=5))
    greedy = await engine.generate(request(prompt, temperature=0, max_tokens=8))
    assert one.token_ids == greedy.token_ids
    unc = {
        (await engine.generate(request(prompt, max_tokens=1, seed=s))).token_ids[0]
        for s in range(40)
    }
    assert not unc <= best  # without the cut the tiny random model strays outside them


async def test_stop_string_ends_the_row_and_stays_in_text(engine):
    full = await engine.generate(request(PROMPTS[1], temperature=0, max_tokens=12))
    stop = engine.tokenizer.decode(full.token_ids[4:6])
    out = await engine.generate(request(PROMPTS[1], temperature=0, max_tokens=12, stop=[stop]))
    assert out.finish_reason == "stop"
    assert out.text.endswith(stop) and full.text.startswith(out.text)
    assert out.token_ids == full.token_ids[: len(out.token_ids)]
    assert len(out.token_ids) <= 6 and len(out.logprobs) == len(out.token_ids)


async def test_eos_finishes_one_row_while_others_go_on(engine):
    first = naive_greedy(engine, PROMPTS[0], 8)
    engine.eos_ids = {first[2]}  # pretend the third greedy token is end-of-sequence
    outs = await asyncio.gather(
        engine.generate(request(PROMPTS[0], temperature=0, max_tokens=8)),
        engine.generate(request(PROMPTS[1], temperature=0, max_tokens=8)),
    )
    assert (
        outs[0].finish_reason == "stop" and outs[0].token_ids == first[: first.index(first[2]) + 1]
    )
    assert (
        outs[1].token_ids[: len(outs[1].token_ids)]
        == naive_greedy(engine, PROMPTS[1], 8)[: len(outs[1].token_ids)]
    )


async def test_context_overflow_is_a_length_completion_not_an_error(model_dir):
    engine = LocalEngine(model_dir, device="cpu", context_length=32)
    too_long = await engine.generate(request([5] * 32, temperature=0))
    assert (too_long.text, too_long.token_ids, too_long.finish_reason) == ("", [], "length")
    capped = await engine.generate(request([5] * 28, temperature=0, max_tokens=100))
    assert len(capped.token_ids) <= 4


async def test_chat_path_renders_with_the_renderer(engine):
    messages = [Message(role="user", content="capital of Peru?")]
    tools = [{"type": "function", "function": {"name": "search", "parameters": {}}}]
    chat = await engine.generate(
        GenerateRequest(messages=messages, tools=tools, sampling=SamplingParams(temperature=0))
    )
    ids = engine.renderer.render_prompt(messages, tools)
    assert chat.usage.prompt_tokens == len(ids)
    tokens = await engine.generate(request(ids, temperature=0))
    assert chat.token_ids == tokens.token_ids and chat.text == tokens.text


async def test_bad_prompts_raise_engine_error(engine):
    with pytest.raises(EngineError, match="token ids"):
        await engine.generate(request([10**6]))
    with pytest.raises(EngineError, match="empty"):
        await engine.generate(request([]))
    with pytest.raises(EngineError, match="not a model directory"):
        LocalEngine(engine.model_dir / "nowhere")


async def test_load_state_dict_swaps_weights(engine, tmp_path):
    from transformers import AutoModelForCausalLM

    before = await engine.generate(request(PROMPTS[1], temperature=0, max_tokens=8))
    size = ModelSize(hidden=64, layers=2, heads=4, max_positions=256, tie_embeddings=False)
    create_model(engine.model_dir, tmp_path / "other", size=size, seed=1)
    engine.load_state_dict(AutoModelForCausalLM.from_pretrained(tmp_path / "other").state_dict())
    after = await engine.generate(request(PROMPTS[1], temperature=0, max_tokens=8))
    assert after.token_ids != before.token_ids
    assert after.token_ids == naive_greedy(engine, PROMPTS[1], 8)[: len(after.token_ids)]


def test_renderer_tool_response_extends_the_prompt_exactly(engine):
    renderer = engine.renderer
    user = Message(role="user", content="capital of Peru?")
    call = ToolCall(id="c0", name="search", arguments={"query": "Peru"})
    response = engine.tokenizer.encode(format_tool_call(call.name, call.arguments) + "<|im_end|>")
    running = renderer.render_prompt([user], None) + response
    running += renderer.render_tool_response("Lima is the capital.")
    full = renderer.render_prompt(
        [
            user,
            Message(role="assistant", content="", tool_calls=[call]),
            Message(role="tool", content="Lima is the capital.", tool_call_id="c0"),
        ],
        None,
    )
    assert running == full


async def test_a_cancelled_request_does_not_disturb_the_others(engine):
    slow = asyncio.create_task(engine.generate(request(PROMPTS[0], temperature=0, max_tokens=200)))
    fast = asyncio.create_task(engine.generate(request(PROMPTS[1], temperature=0, max_tokens=6)))
    await asyncio.sleep(0)  # both are queued
    slow.cancel()
    assert (await fast).token_ids == expected_greedy(engine, PROMPTS[1], 6)
    with pytest.raises(asyncio.CancelledError):
        await slow
    again = await engine.generate(request(PROMPTS[0], temperature=0, max_tokens=4))
    assert again.token_ids == expected_greedy(engine, PROMPTS[0], 4)


async def alone_and_batched(engine: LocalEngine) -> tuple[Completion, Completion]:
    """One seeded sampled request alone, then the same among 7 others of other lengths."""
    target = request(PROMPTS[1], max_tokens=16, seed=11)
    alone = await engine.generate(target)
    others = [request([7 + i] * (3 + 5 * i), max_tokens=16, seed=i) for i in range(7)]
    batched = await asyncio.gather(
        *(engine.generate(r) for r in [*others[:3], target, *others[3:]])
    )
    return alone, batched[3]


@pytest.mark.parametrize("dtype", ["bf16", "fp32"])
async def test_batch_invariant_mode_gives_the_same_bits_in_any_batch(model_dir, dtype):
    engine = LocalEngine(model_dir, device="cpu", dtype=dtype, batch_invariant=True)
    alone, batched = await alone_and_batched(engine)
    assert max(engine.batch_sizes) == 8  # it was batched
    assert batched.token_ids == alone.token_ids
    assert batched.logprobs == alone.logprobs  # exactly, not approximately
    assert engine.prefix_cache.max_tokens == 0  # a cache hit would pre-fill differently


async def test_each_request_alone_decodes_invariantly_for_the_block_only(model_dir):
    engine = LocalEngine(model_dir, device="cpu", dtype="bf16")  # batched, prefix-cached
    cache = engine.prefix_cache
    with engine.each_request_alone():
        alone, batched = await alone_and_batched(engine)
        assert engine.prefix_cache.max_tokens == 0
    assert max(engine.batch_sizes) == 8
    assert (batched.token_ids, batched.logprobs) == (alone.token_ids, alone.logprobs)
    assert not engine.batch_invariant and engine.prefix_cache is cache  # as before the block
    with pytest.raises(RuntimeError), engine.each_request_alone():
        raise RuntimeError("an evaluation that failed")
    assert not engine.batch_invariant and engine.prefix_cache is cache


async def test_batch_invariant_greedy_speculates_alike_alone_and_in_a_crowd(model_dir):
    # a pass over a row's token and its guesses rounds differently (bf16, int8) from a pass
    # over one token, so whether a row speculates must not depend on the rows beside it:
    # batch_invariant ignores speculate_batch (each of its rows runs alone anyway)
    engine = LocalEngine(
        model_dir, device="cpu", dtype="bf16", batch_invariant=True, speculate=3,
        speculate_batch=2,
    )  # fmt: skip
    target = request([20] * 30, temperature=0, max_tokens=16)  # repeats: prompt lookup guesses
    alone = await engine.generate(target)
    drafted_alone = engine.stats.drafted
    # sampled rows never speculate: every guess checked in the crowd is the target's
    others = [request([7 + i] * (3 + 5 * i), max_tokens=48, seed=i) for i in range(7)]
    batched = await asyncio.gather(*(engine.generate(r) for r in [*others, target]))
    assert max(engine.batch_sizes) == 8
    assert drafted_alone > 0
    assert engine.stats.drafted - drafted_alone == drafted_alone
    assert batched[-1].token_ids == alone.token_ids
    assert batched[-1].logprobs == alone.logprobs


async def test_a_failing_prefill_fails_its_requests_instead_of_hanging(engine, monkeypatch):
    def broken(self, rows):
        raise RuntimeError("boom")

    monkeypatch.setattr(BatchDecoder, "add", broken)
    calls = [engine.generate(request(p, temperature=0, max_tokens=4)) for p in PROMPTS[:2]]
    results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), timeout=120)
    assert all(isinstance(r, EngineError) and "boom" in str(r) for r in results)
