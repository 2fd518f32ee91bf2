"""LocalEngine throughput on the default model: pre-fill, decode, concurrency, dtype, prefix cache,
and wall time per wide task end to end.

    python bench/local_engine.py                      # SmolLM2-135M (the default base)
    python bench/local_engine.py --model DIR          # any model or adapter directory
    python bench/local_engine.py --dtypes fp32 auto auto+int8   # engines to compare
    python bench/local_engine.py --device cuda        # GPU mode (add --concurrency 1 16 64)
    python bench/local_engine.py --model ADAPTER --wide-tasks 3   # + agents on wide test tasks
    python bench/local_engine.py --dtypes auto+int8 llama.cpp     # beside the llama.cpp engine

Engines vary by drift between runs on a shared VM (±30% seen): the int8 figures that count are
the last block's, int8 and exact decode steps alternated on one engine. For each dtype, on one
engine: pre-fill tokens/s (one prompt of --prompt-len, one new token); new tokens/s for 1, 8
and 16 concurrent requests of --prompt-len + --new-tokens (sampling, as subagents send them,
fired together); and an agent's turns — three turns, each prompt the last one plus its
generation plus a --tool-len tool result — with the prefix cache on and off, as wall seconds.
Ratios are printed beside the figures (16-concurrent / batch 1, cache off / on, dtype / the
first dtype). `llama.cpp` (or `llama.cpp+f16`, the merged weights' type) is the llama.cpp
engine on the same model (llm/llamacpp_engine.py; its own prefix reuse, so no "cache off"
figure; its first run exports the merged model once). With --wide-tasks N, the first N wide
test tasks of the bundled world run end to end through the real runtime (multi-agent, greedy,
the limits the default model is evaluated with: lead 4 turns, subagents 5, 256 tokens a
response, 4,096 per agent), printing seconds per task and where the engine's time went
(pre-fill vs decode steps, mean batch). The numbers are from one process on an otherwise idle
machine; a second busy process on a 2-core machine cuts them several-fold.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tempfile
import time

import torch

from wideseek.config import DEFAULT_SPECULATE, AgentConfig, Config, ToolsConfig
from wideseek.llm.batched_decode import BatchDecoder, DecodeRow
from wideseek.llm.engine import GenerateRequest, SamplingParams
from wideseek.llm.int8_decode import DEFAULT_MAX_ROWS, Int8DecodeLinear
from wideseek.llm.llamacpp_engine import LlamaCppEngine
from wideseek.llm.local import LocalEngine
from wideseek.llm.queued_engine import QueuedEngine
from wideseek.runtime import run_suite
from wideseek.world.store import load_world
from wideseek.world.suites import suite_tasks


def prompts(engine: QueuedEngine, n: int, length: int, seed: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    vocab = min(engine.vocab_size, len(engine.tokenizer))
    return [torch.randint(100, vocab, (length,), generator=g).tolist() for _ in range(n)]


async def new_tokens_per_s(engine: QueuedEngine, n: int, length: int, new: int) -> float:
    batch = prompts(engine, n, length, seed=n)

    async def one(i: int) -> int:
        sampling = SamplingParams(max_tokens=new, temperature=1.0, seed=i)
        out = await engine.generate(GenerateRequest(prompt_token_ids=batch[i], sampling=sampling))
        return len(out.token_ids)

    start = time.perf_counter()
    counts = await asyncio.gather(*(one(i) for i in range(n)))
    return sum(counts) / (time.perf_counter() - start)


async def prefill_per_s(engine: QueuedEngine, length: int, seed: int) -> float:
    (prompt,) = prompts(engine, 1, length, seed=seed)  # a new prompt: nothing cached to reuse
    sampling = SamplingParams(max_tokens=1, temperature=0)
    start = time.perf_counter()
    await engine.generate(GenerateRequest(prompt_token_ids=prompt, sampling=sampling))
    return length / (time.perf_counter() - start)


async def agent_seconds(engine: QueuedEngine, length: int, new: int, tool: int) -> float:
    (prompt,) = prompts(engine, 1, length, seed=7)
    results = prompts(engine, 3, tool, seed=8)
    start = time.perf_counter()
    for turn in range(3):
        sampling = SamplingParams(max_tokens=new, temperature=1.0, seed=turn)
        out = await engine.generate(GenerateRequest(prompt_token_ids=prompt, sampling=sampling))
        prompt = prompt + out.token_ids + results[turn]
    return time.perf_counter() - start


# Wide tasks as the default model is evaluated: greedy, lead 4 turns, subagents 5, 256 tokens
# a response, 4,096 per agent (bench/speculate.py runs them too).
WIDE_AGENT = AgentConfig(
    mode="multi",
    lead_turns=4,
    subagent_turns=5,
    max_response_tokens=256,
    context_length=4096,
    temperature=0.0,
    seed=0,
)


async def wide_tasks(engine: QueuedEngine, n: int, concurrency: int) -> dict[str, float]:
    """Seconds per wide test task end to end, and the engine's pre-fill / decode split."""
    world = load_world()
    tasks = suite_tasks(world, "wide", "test")[:n]
    config = Config(agent=WIDE_AGENT, tools=ToolsConfig(corpus=str(world.corpus_path)))
    before = dataclasses.replace(engine.stats)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as run_dir:
        run = await run_suite(
            tasks,
            config,
            run_dir,
            suite="bench",
            engine=engine,
            concurrency=concurrency,
            show_progress=False,
        )
    wall = time.perf_counter() - start
    stats = {k: v - getattr(before, k) for k, v in vars(engine.stats).items()}
    return {
        "wide task, wall (s)": wall / len(tasks),
        "wide item F1": run.summary.get("item_f1_avg", 0.0),
        "pre-fill share": stats["prefill_s"] / wall,
        "decode share": stats["decode_s"] / wall,
        "pre-fill tok/s": stats["prefill_tokens"] / max(stats["prefill_s"], 1e-9),
        "decode new tok/s": stats["new_tokens"] / max(stats["decode_s"], 1e-9),
        "mean decode batch": stats["new_tokens"] / max(stats["steps"], 1),
    }


def decode_step_ms(engine: LocalEngine, ctx: int, rows: int, steps: int = 24) -> float:
    """Mean milliseconds of one greedy decode step of `rows` rows at context `ctx`."""
    g = torch.Generator().manual_seed(ctx + rows)
    vocab = min(engine.model.config.vocab_size, len(engine.tokenizer))
    batch = [
        DecodeRow(
            prompt=torch.randint(100, vocab, (ctx,), generator=g).tolist(),
            params=SamplingParams(temperature=0),
            max_new=10**6,
            generator=torch.Generator(),
        )
        for _ in range(rows)
    ]
    decoder = BatchDecoder(engine.model, engine.eos_ids)
    decoder.add(batch)
    decoder.step(), decoder.step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        decoder.step()
    return (time.perf_counter() - start) / steps * 1e3


def int8_ab(model: str, device: str | None, reps: int = 3) -> None:
    """int8 vs exact decode steps on one engine, alternated (min of `reps`), so that drift in
    the machine's speed falls on both sides alike."""
    engine = LocalEngine(model, device=device, int8_decode="on")
    wrappers = [m for m in engine.model.modules() if isinstance(m, Int8DecodeLinear)]
    print("\ndecode step (ms), int8 vs exact weights, alternated on one engine:")
    for ctx, rows in ((512, 1), (2000, 1), (512, 4)):
        times: dict[str, list[float]] = {"int8": [], "exact": []}
        for _ in range(reps):
            for name, max_rows in (("int8", DEFAULT_MAX_ROWS), ("exact", 0)):
                for w in wrappers:
                    w.max_rows = max_rows
                times[name].append(decode_step_ms(engine, ctx, rows))
        i8, ex = min(times["int8"]), min(times["exact"])
        print(f"  ctx {ctx:>5}, {rows} row(s): int8 {i8:6.1f}  exact {ex:6.1f}  {ex / i8:.2f}x")


def open_variant(model: str, variant: str, args: argparse.Namespace) -> QueuedEngine:
    """`variant`: a dtype (fp32 | bf16 | auto), with `+int8` for int8 decode and `+spec` for
    the engine's default prompt-lookup speculation (as `ask` and `eval` run it); or llama.cpp,
    with `+f16` / `+f32` for the merged weights' type (q8_0 by default)."""
    kind, *extras = variant.split("+")
    if kind == "llama.cpp":
        weights = extras[0] if extras else "q8_0"
        engine = LlamaCppEngine(model, weights=weights)  # type: ignore[arg-type]
        print(f"{variant}: {engine.gguf_path.name}")
        return engine
    int8_decode = "on" if "int8" in extras else "off"
    speculate = DEFAULT_SPECULATE if "spec" in extras else 0
    local = LocalEngine(
        model, dtype=kind, device=args.device, int8_decode=int8_decode, speculate=speculate
    )
    print(f"{variant}: {local.dtype_reason}; int8 {local.int8_decode}; speculate {speculate}")
    return local


async def measure(model: str, variant: str, args: argparse.Namespace) -> dict[str, float]:
    """One engine's figures (`open_variant`)."""
    engine = open_variant(model, variant, args)
    await new_tokens_per_s(engine, 2, 64, 4)  # warm-up
    fills = [await prefill_per_s(engine, args.prompt_len, seed=99 + i) for i in range(2)]
    row = {"prefill tok/s": max(fills)}
    for n in args.concurrency:
        rate = await new_tokens_per_s(engine, n, args.prompt_len, args.new_tokens)
        row[f"new tok/s, {n} concurrent"] = rate
    if isinstance(engine, LocalEngine):
        for label, cache in (("agent 3 turns, cache on (s)", 65_536), ("cache off (s)", 0)):
            engine.prefix_cache.max_tokens = cache
            engine.prefix_cache.clear()
            turns = agent_seconds(engine, args.prompt_len, args.new_tokens, args.tool_len)
            row[label] = await turns
        engine.prefix_cache.max_tokens = 65_536
    else:  # its sequences keep what they ran: nothing to turn off
        row["agent 3 turns, cache on (s)"] = await agent_seconds(
            engine, args.prompt_len, args.new_tokens, args.tool_len
        )
        row["cache off (s)"] = float("nan")
    if args.wide_tasks:
        row.update(await wide_tasks(engine, args.wide_tasks, args.task_concurrency))
    return row


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="default", help="model/adapter dir or base spec")
    ap.add_argument(
        "--dtypes",
        nargs="+",
        default=["auto", "auto+int8"],
        help="engines: a weights dtype (fp32, bf16, auto), +int8 for int8 decode weights, "
        "+spec for the default speculation; llama.cpp (+f16 / +f32: the merged weights' "
        "type, q8_0 by default)",
    )
    ap.add_argument("--prompt-len", type=int, default=512)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--tool-len", type=int, default=600, help="tokens of each tool result")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 16])
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    ap.add_argument("--wide-tasks", type=int, default=0, help="also run N wide test tasks")
    ap.add_argument("--task-concurrency", type=int, default=1, help="wide tasks in flight")
    ap.add_argument("--no-int8-ab", action="store_true", help="skip the int8 decode-step A/B")
    args = ap.parse_args()
    model = args.model  # LocalEngine resolves a base spec, model dir or adapter itself
    print(f"model {model}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    table = {dtype: await measure(model, dtype, args) for dtype in args.dtypes}
    first = table[args.dtypes[0]]
    print(f"\n{'':32}" + "".join(f"{d:>12}" for d in args.dtypes) + f"{'ratio':>10}")
    for key in first:
        cells = "".join(
            f"{table[d][key]:>12{'.3f' if abs(first[key]) < 10 else '.1f'}}" for d in args.dtypes
        )
        ratio = table[args.dtypes[-1]][key] / first[key] if first[key] else float("nan")
        print(f"{key:32}{cells}{ratio:>9.2f}x")
    for dtype, row in table.items():
        n = max(args.concurrency)
        scale = row[f"new tok/s, {n} concurrent"] / row["new tok/s, 1 concurrent"]
        reuse = row["cache off (s)"] / row["agent 3 turns, cache on (s)"]
        print(f"{dtype}: {n}-concurrent / batch 1 {scale:.1f}x; agent cache off / on {reuse:.2f}x")
    wants_ab = any(not d.startswith("llama.cpp") for d in args.dtypes)
    if wants_ab and not args.no_int8_ab and torch.device(args.device or "cpu").type == "cpu":
        int8_ab(model, args.device)


if __name__ == "__main__":
    asyncio.run(main())
