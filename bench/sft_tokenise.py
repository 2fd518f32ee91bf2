"""Tokenising SFT demonstrations: one process vs a process pool vs the disk cache, side by side.

    python bench/sft_tokenise.py TRAJECTORIES.jsonl [...] [--model default] [--workers 2]

Builds the examples of the given trajectory files (what `wideseek train sft` trains on) with
`train.example_cache.parallel_examples` in one process and in `--workers` processes, then
writes and reads them back through the cache (in a temporary cache dir), and prints seconds
and examples/s for each. Run it alone: other busy processes change every figure.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from wideseek.llm.model_loading import load_tokenizer
from wideseek.llm.resolved_model import resolve_model
from wideseek.train.example_cache import ExampleKey, cached_examples, parallel_examples
from wideseek.train.sft_run import load_trajectories


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trajectories", nargs="+", type=Path)
    parser.add_argument("--model", default="default")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=3072)
    args = parser.parse_args()
    model = resolve_model(args.model)
    tokenizer = load_tokenizer(model)
    trajectories = load_trajectories(args.trajectories)
    roles = ("lead", "subagent", "single")
    rows: dict[str, float] = {}
    for workers in (1, args.workers):
        start = time.perf_counter()
        examples = parallel_examples(tokenizer, trajectories, args.max_length, roles, workers)
        rows[f"{workers} process(es)"] = time.perf_counter() - start
    key = ExampleKey(tuple(args.trajectories), model.tokenizer_dir, args.max_length, roles)
    with tempfile.TemporaryDirectory() as cache:
        os.environ["WIDESEEK_CACHE"] = cache
        start = time.perf_counter()
        cached_examples(key, lambda: examples)
        rows["cache write"] = time.perf_counter() - start
        start = time.perf_counter()
        again = cached_examples(key, lambda: [])  # a hit never builds
        rows["cache read (incl. hashing inputs)"] = time.perf_counter() - start
    assert again == examples
    tokens = sum(len(e.input_ids) for e in examples)
    print(f"{len(trajectories)} trajectories -> {len(examples)} examples, {tokens:,} tokens")
    for name, seconds in rows.items():
        print(f"{name:36}{seconds:8.2f} s{len(examples) / seconds:10.0f} examples/s")


if __name__ == "__main__":
    main()
