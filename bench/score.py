"""Time to score all 200 WideSearch gold answers: offline judge vs a loopback LLM judge.

Every gold table is rendered as a perfect markdown answer and scored. Figures, same run:
- offline, cold: first pass in a fresh process (includes dateparser loading its locales);
- offline, warm: second pass (dateparser already loaded);
- LLM judge over HTTP: `LLMJudge` + `ChatCompleter` against `FakeJudgeServer` on 127.0.0.1
  (a real uvicorn server in a thread of this process, so its CPU time is counted too);
- LLM judge, cached: the same again with every reply in the on-disk cache (re-scoring).

Our date memo is cleared before every pass after the first, so passes compare like for like.

Usage: python bench/score.py [--data ../shared/widesearch] [--concurrency 8]
Target: offline < 10 s on the 2-core dev machine.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from wideseek.eval.fake_judge_server import FakeJudgeServer
from wideseek.eval.judge_client import ChatCompleter
from wideseek.eval.judges import Judge, LLMJudge, OfflineJudge
from wideseek.eval.table_extract import render_markdown_table
from wideseek.eval.widesearch_data import load_benchmark
from wideseek.eval.widesearch_metrics import dateparse
from wideseek.eval.widesearch_scorer import score_widesearch

REPO = Path(__file__).resolve().parents[1]


async def score_all(items, judge: Judge, concurrency: int) -> tuple[float, int]:
    slots = asyncio.Semaphore(concurrency)

    async def one(task, gold, answer):
        async with slots:
            return await score_widesearch(task, answer, gold, judge)

    start = time.perf_counter()
    scores = await asyncio.gather(*(one(*item) for item in items))
    return time.perf_counter() - start, sum(s.success for s in scores)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "widesearch")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    items = [(t, g, render_markdown_table(g)) for t, g in load_benchmark(args.data)]
    cells = sum(g.size for _, g, _ in items)
    rows: list[tuple[str, float, int, str]] = []

    seconds, ok = await score_all(items, OfflineJudge(), args.concurrency)
    rows.append(("offline judge, cold", seconds, ok, "-"))
    dateparse.cache_clear()
    seconds, ok = await score_all(items, OfflineJudge(), args.concurrency)
    rows.append(("offline judge, warm", seconds, ok, "-"))

    with tempfile.TemporaryDirectory() as tmp, FakeJudgeServer() as server:
        for label in ("LLM judge, loopback HTTP", "LLM judge, all cached"):
            completer = ChatCompleter(
                "fake-judge",
                server.base_url,
                cache_path=Path(tmp) / "judge.sqlite",
                max_concurrency=args.concurrency,
            )
            dateparse.cache_clear()
            seconds, ok = await score_all(items, LLMJudge(completer), args.concurrency)
            rows.append((label, seconds, ok, str(completer.calls)))
            await completer.aclose()

    base = rows[1][1]
    print(f"{len(items)} gold answers, {cells:,} gold cells, concurrency {args.concurrency}\n")
    print(f"| {'judge':<26} | seconds | answers/s | success | HTTP calls | vs offline warm |")
    print(f"|{'-' * 28}|--------:|----------:|--------:|-----------:|----------------:|")
    for label, seconds, ok, calls in rows:
        rate = len(items) / seconds
        print(
            f"| {label:<26} | {seconds:7.2f} | {rate:9.1f} | {ok:3d}/{len(items)} "
            f"| {calls:>10} | {seconds / base:14.2f}x |"
        )


if __name__ == "__main__":
    asyncio.run(main())
