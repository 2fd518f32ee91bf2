"""Time to score all 200 WideSearch gold answers: offline judge vs a loopback LLM judge.

Every gold table is rendered as a perfect markdown answer and scored. Figures, same run:
- offline, cold: first pass in a fresh process (includes dateparser loading its locales);
- offline, warm: second pass (dateparser already loaded);
- LLM judge over HTTP: `LLMJudge` + `ChatCompleter` against `FakeJudgeServer` on 127.0.0.1
  (a real uvicorn server in a thread of this process, so its CPU time is counted too);
- LLM judge, cached: the same again with every reply in the on-disk cache (re-scoring).

Our date memo is cleared before every pass after the first, so passes compare like for like.
After the timings, every gold answer that does not succeed under the offline judge is listed
with its scores, what did not match (rows left out of the join, wrong cells per metric) and
the gold-cell quirks behind it (SCORER.md §3.4): multi-line cells where `norm_str` keeps the
newline, key cells starting with `"` (CSV quoting strips it on the answer side), and cells
holding `|` (a markdown row cannot).

Usage: python bench/score.py [--data ../shared/widesearch] [--concurrency 8]
Target: offline < 10 s on the 2-core dev machine.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from pathlib import Path

from wideseek.eval.judge_client import ChatCompleter
from wideseek.eval.judges import Judge, LLMJudge, OfflineJudge
from wideseek.eval.table_extract import render_markdown_table
from wideseek.eval.widesearch_data import load_benchmark
from wideseek.eval.widesearch_metrics import dateparse
from wideseek.eval.widesearch_scorer import score_widesearch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # FakeJudgeServer is a test double: tests/ holds it
from fake_judge_server import FakeJudgeServer  # noqa: E402


async def score_all(items, judge: Judge, concurrency: int) -> tuple[float, list]:
    slots = asyncio.Semaphore(concurrency)

    async def one(task, gold, answer):
        async with slots:
            return await score_widesearch(task, answer, gold, judge)

    start = time.perf_counter()
    scores = await asyncio.gather(*(one(*item) for item in items))
    return time.perf_counter() - start, scores


def gold_quirks(task, gold) -> str:
    """The gold cells a perfect markdown answer cannot reproduce, counted per kind."""
    keys = set(task.evaluation["unique_columns"])
    pipeline = task.evaluation["eval_pipeline"]
    found: dict[str, int] = {}
    for column in gold.columns:
        metric = "key" if column in keys else "+".join(pipeline[column]["metric"])
        cells = [str(v) for v in gold[column].dropna()]
        for kind, hit in (
            ("multi-line", lambda v: bool(re.search(r"[\r\n]", v.strip()))),
            ('leading "', lambda v: v.startswith('"')),
            ("pipe inside", lambda v: "|" in v),
        ):
            n = sum(hit(v) for v in cells)
            if n:
                label = f"{kind} {metric}"
                found[label] = found.get(label, 0) + n
    return ", ".join(f"{label} x{n}" for label, n in found.items()) or "none found"


def why(score) -> str:
    """Rows left out of the join and wrong cells per metric, from the score's counts."""
    counts = re.fullmatch(r"(\d+) joined rows, \d+ answer rows, (\d+) gold rows", score.msg)
    if counts is None:  # a zero score: its message says why
        return score.msg
    joined, gold_rows = int(counts[1]), int(counts[2])
    parts = [f"{gold_rows - joined}/{gold_rows} gold rows not joined"] if joined < gold_rows else []
    parts += [
        f"{kind} {int(n - right)}/{int(n)} cells wrong"
        for kind, (right, n) in score.metric_cells.items()
        if right < n
    ]
    return "; ".join(parts)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "widesearch")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    items = [(t, g, render_markdown_table(g)) for t, g in load_benchmark(args.data)]
    cells = sum(g.size for _, g, _ in items)
    rows: list[tuple[str, float, int, str]] = []

    seconds, scores = await score_all(items, OfflineJudge(), args.concurrency)
    rows.append(("offline judge, cold", seconds, sum(s.success for s in scores), "-"))
    dateparse.cache_clear()
    seconds, scores = await score_all(items, OfflineJudge(), args.concurrency)
    rows.append(("offline judge, warm", seconds, sum(s.success for s in scores), "-"))
    failures = [(item, s) for item, s in zip(items, scores, strict=True) if not s.success]

    with tempfile.TemporaryDirectory() as tmp, FakeJudgeServer() as server:
        for label in ("LLM judge, loopback HTTP", "LLM judge, all cached"):
            completer = ChatCompleter(
                "fake-judge",
                server.base_url,
                cache_path=Path(tmp) / "judge.sqlite",
                max_concurrency=args.concurrency,
            )
            dateparse.cache_clear()
            seconds, scores = await score_all(items, LLMJudge(completer), args.concurrency)
            rows.append((label, seconds, sum(s.success for s in scores), str(completer.calls)))
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

    print(f"\nGold answers that do not succeed with the offline judge: {len(failures)}\n")
    print("| task | item F1 | row P / R | what did not match | gold cells no markdown row keeps |")
    print("|---|---:|---:|---|---|")
    for (task, gold, _), s in failures:
        print(
            f"| {task.id} | {s.item_f1:.4f} | {s.row_precision:.3f} / {s.row_recall:.3f} "
            f"| {why(s)} | {gold_quirks(task, gold)} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
