"""LocalEngine throughput on the default model: pre-fill, decode, concurrency, dtype, prefix cache.

    python bench/local_engine.py                      # SmolLM2-135M (the default base)
    python bench/local_engine.py --model DIR          # any model or adapter directory
    python bench/local_engine.py --dtypes fp32 auto   # the weights' dtypes to compare

For each dtype, on one engine: pre-fill tokens/s (one prompt of --prompt-len, one new token);
new tokens/s for 1, 8 and 16 concurrent requests of --prompt-len + --new-tokens (sampling, as
subagents send them, fired together); and an agent's turns — three turns, each prompt the last
one plus its generation plus a --tool-len tool result — with the prefix cache on and off, as
wall seconds. Ratios are printed beside the figures (16-concurrent / batch 1, cache off / on,
dtype / the first dtype). The numbers are from one process on an otherwise idle machine; a
second busy process on a 2-core machine cuts them several-fold.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import torch

from wideseek.llm.base import GenerateRequest, SamplingParams
from wideseek.llm.base_model import resolve_base_model
from wideseek.llm.local import LocalEngine


def prompts(engine: LocalEngine, n: int, length: int, seed: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    vocab = min(engine.model.config.vocab_size, len(engine.tokenizer))
    return [torch.randint(100, vocab, (length,), generator=g).tolist() for _ in range(n)]


async def new_tokens_per_s(engine: LocalEngine, n: int, length: int, new: int) -> float:
    batch = prompts(engine, n, length, seed=n)

    async def one(i: int) -> int:
        sampling = SamplingParams(max_tokens=new, temperature=1.0, seed=i)
        out = await engine.generate(GenerateRequest(prompt_token_ids=batch[i], sampling=sampling))
        return len(out.token_ids)

    start = time.perf_counter()
    counts = await asyncio.gather(*(one(i) for i in range(n)))
    return sum(counts) / (time.perf_counter() - start)


async def prefill_per_s(engine: LocalEngine, length: int) -> float:
    (prompt,) = prompts(engine, 1, length, seed=99)
    sampling = SamplingParams(max_tokens=1, temperature=0)
    start = time.perf_counter()
    await engine.generate(GenerateRequest(prompt_token_ids=prompt, sampling=sampling))
    return length / (time.perf_counter() - start)


async def agent_seconds(engine: LocalEngine, length: int, new: int, tool: int) -> float:
    (prompt,) = prompts(engine, 1, length, seed=7)
    results = prompts(engine, 3, tool, seed=8)
    start = time.perf_counter()
    for turn in range(3):
        sampling = SamplingParams(max_tokens=new, temperature=1.0, seed=turn)
        out = await engine.generate(GenerateRequest(prompt_token_ids=prompt, sampling=sampling))
        prompt = prompt + out.token_ids + results[turn]
    return time.perf_counter() - start


async def measure(model: str, dtype: str, args: argparse.Namespace) -> dict[str, float]:
    engine = LocalEngine(model, dtype=dtype)
    print(f"{dtype}: {engine.dtype_reason}")
    await new_tokens_per_s(engine, 2, 64, 4)  # warm-up
    row = {"prefill tok/s": max([await prefill_per_s(engine, args.prompt_len) for _ in range(2)])}
    for n in args.concurrency:
        rate = await new_tokens_per_s(engine, n, args.prompt_len, args.new_tokens)
        row[f"new tok/s, {n} concurrent"] = rate
    for label, cache_tokens in (("agent 3 turns, cache on (s)", 65_536), ("cache off (s)", 0)):
        engine.prefix_cache.max_tokens = cache_tokens
        engine.prefix_cache.clear()
        row[label] = await agent_seconds(engine, args.prompt_len, args.new_tokens, args.tool_len)
    return row


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="default", help="model/adapter dir or base spec")
    ap.add_argument("--dtypes", nargs="+", default=["fp32", "auto"])
    ap.add_argument("--prompt-len", type=int, default=512)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--tool-len", type=int, default=600, help="tokens of each tool result")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 16])
    args = ap.parse_args()
    model = str(resolve_base_model(args.model))
    print(f"model {model}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    table = {dtype: await measure(model, dtype, args) for dtype in args.dtypes}
    first = table[args.dtypes[0]]
    print(f"\n{'':32}" + "".join(f"{d:>12}" for d in args.dtypes) + f"{'ratio':>10}")
    for key in first:
        cells = "".join(f"{table[d][key]:>12.1f}" for d in args.dtypes)
        print(f"{key:32}{cells}{table[args.dtypes[-1]][key] / first[key]:>9.2f}x")
    for dtype, row in table.items():
        n = max(args.concurrency)
        scale = row[f"new tok/s, {n} concurrent"] / row["new tok/s, 1 concurrent"]
        reuse = row["cache off (s)"] / row["agent 3 turns, cache on (s)"]
        print(f"{dtype}: {n}-concurrent / batch 1 {scale:.1f}x; agent cache off / on {reuse:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
