"""Throughput of LocalEngine: tokens/s at batch 1 and with 8 and 16 concurrent requests.

    python bench/local_engine.py                  # a fresh random ~5M-parameter Qwen3 model
    python bench/local_engine.py --model DIR      # a trained model directory

Prints one row per setting (plus transformers' own `generate` at batch 1 as the baseline,
16 requests arriving --stagger-ms apart, which join the running batch, and 16 with a stop
string, as agents send) and the ratio
16-concurrent / batch-1; the target for the shipped model is >= 8x. Concurrent
requests are fired together with asyncio.gather, as parallel subagents do. Random weights decode
exactly as fast as trained ones, so the fresh model measures the engine, not the model's skill.
Run it on an otherwise idle machine: concurrent CPU load slows generation several-fold.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import torch

from wideseek.llm.base import GenerateRequest, SamplingParams
from wideseek.llm.local import LocalEngine
from wideseek.train.tiny_model import ModelSize, count_parameters, create_model
from wideseek.train.tokenizer import train_tokenizer


def fresh_model(root: Path, size: ModelSize, vocab: int) -> Path:
    words = [
        "capital",
        "population",
        "currency",
        "country",
        "city",
        "river",
        "language",
        "founded",
        "area",
    ]
    texts = [" ".join(words[(i * 7 + j) % len(words)] for j in range(40)) for i in range(200)]
    train_tokenizer(texts, vocab_size=512, out_dir=root / "tok")
    # The model's vocabulary is padded to `vocab`: the output layer costs what a real one does.
    create_model(root / "tok", root / "model", size=size, vocab_size=vocab)
    return root / "model"


async def run_concurrent(
    engine: LocalEngine,
    n: int,
    prompt_len: int,
    new_tokens: int,
    seed: int,
    stagger_s: float = 0,
    stop: list[str] | None = None,
) -> tuple[int, float]:
    """n requests, the i-th sent after i * stagger_s; returns (completion tokens, seconds)."""
    vocab = min(engine.model.config.vocab_size, len(engine.tokenizer))
    g = torch.Generator().manual_seed(seed)
    prompts = [torch.randint(0, vocab, (prompt_len,), generator=g).tolist() for _ in range(n)]

    async def one(i: int) -> int:
        await asyncio.sleep(i * stagger_s)
        sampling = SamplingParams(max_tokens=new_tokens, seed=seed + i, stop=stop or [])
        out = await engine.generate(GenerateRequest(prompt_token_ids=prompts[i], sampling=sampling))
        return len(out.token_ids or [])

    start = time.perf_counter()
    counts = await asyncio.gather(*(one(i) for i in range(n)))
    return sum(counts), time.perf_counter() - start


def hf_generate_batch1(engine: LocalEngine, prompt_len: int, new_tokens: int) -> float:
    """Baseline: transformers' `generate`, one request, sampling, same lengths."""
    vocab = min(engine.model.config.vocab_size, len(engine.tokenizer))
    ids = torch.randint(0, vocab, (1, prompt_len))
    start = time.perf_counter()
    out = engine.model.generate(
        ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=True
    )
    return (out.shape[1] - prompt_len) / (time.perf_counter() - start)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, help="model directory; default: a fresh random model")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 16])
    ap.add_argument("--stagger-ms", type=float, default=20, help="gap between late arrivals")
    ap.add_argument("--repeats", type=int, default=2, help="runs per setting; best is kept")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model
        if model_dir is None:
            size = ModelSize(hidden=args.hidden, layers=args.layers, heads=args.heads)
            model_dir = fresh_model(Path(tmp), size, args.vocab)
        engine = LocalEngine(model_dir)
        params = count_parameters(engine.model)
        print(
            f"model {model_dir.name}: {params / 1e6:.1f}M parameters, device {engine.device}, "
            f"{torch.get_num_threads()} threads; prompt {args.prompt_len}, "
            f"{args.new_tokens} new tokens per request"
        )
        await run_concurrent(engine, 2, args.prompt_len, 4, seed=0)  # warm-up
        rows: list[tuple[str, float]] = []
        hf = max(hf_generate_batch1(engine, args.prompt_len, args.new_tokens) for _ in range(2))
        rows.append(("transformers generate, batch 1", hf))
        rates: dict[int, float] = {}
        for n in args.concurrency:
            best = 0.0
            for r in range(args.repeats):
                tokens, seconds = await run_concurrent(
                    engine, n, args.prompt_len, args.new_tokens, seed=r
                )
                best = max(best, tokens / seconds)
            rates[n] = best
            rows.append((f"LocalEngine, {n} concurrent", best))
        # Subagents do not ask at the same instant: late requests join the running batch.
        n, gap = max(args.concurrency), args.stagger_ms / 1000
        tokens, seconds = await run_concurrent(
            engine, n, args.prompt_len, args.new_tokens, seed=0, stagger_s=gap
        )
        rows.append((f"LocalEngine, {n} arriving {args.stagger_ms:g} ms apart", tokens / seconds))
        # What agents send: a stop string (`</tool_response>`), checked for every row each step.
        best = 0.0
        for r in range(args.repeats):
            tokens, seconds = await run_concurrent(
                engine, n, args.prompt_len, args.new_tokens, seed=r, stop=["</tool_response>"]
            )
            best = max(best, tokens / seconds)
        rows.append((f"LocalEngine, {n} concurrent, a stop string", best))

    print(f"\n{'setting':<42}{'tokens/s':>10}")
    for name, rate in rows:
        print(f"{name:<42}{rate:>10.0f}")
    if 1 in rates:
        for n in sorted(rates):
            if n > 1:
                print(f"ratio {n}-concurrent / batch-1: {rates[n] / rates[1]:.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
