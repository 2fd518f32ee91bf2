"""Benchmark of the local BM25 backend: index build, cached load, queries per second.

Generates a synthetic corpus (Zipf-distributed words, a tenth of the pages in Chinese) in a
temporary directory, then measures side by side in one run:
- cold start: read the corpus + build the index + write the cache,
- warm start: read the corpus + load the cached index,
- search throughput: BM25 only, BM25 + snippets (what the tools call), and the same through
  `asyncio.to_thread` to show whether moving search off the event loop would pay.

    python bench/search.py [--pages 20000] [--queries 500] [--seed 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from pathlib import Path

from wideseek.tools.local_corpus import LocalCorpus

CJK_POOL = "".join(chr(c) for c in range(0x4E00, 0x4E00 + 600))  # 600 Han characters
SYLLABLES = ["ka", "lo", "mi", "ra", "ten", "su", "vor", "el", "qu", "an", "dri", "po", "zen"]


def make_corpus(path: Path, pages: int, seed: int) -> list[str]:
    """Write `pages` synthetic pages; return the vocabulary (for drawing queries)."""
    rng = random.Random(seed)
    vocab = sorted({"".join(rng.choices(SYLLABLES, k=rng.randint(2, 4))) for _ in range(8000)})
    weights = [1 / (rank + 1) for rank in range(len(vocab))]  # Zipf: a few very common words
    with path.open("w", encoding="utf-8") as f:
        for i in range(pages):
            if i % 10 == 9:
                title = "".join(rng.choices(CJK_POOL, k=4))
                text = "。".join("".join(rng.choices(CJK_POOL, k=25)) for _ in range(8))
            else:
                title = " ".join(rng.choices(vocab, k=3)).title()
                words = rng.choices(vocab, weights=weights, k=160)
                text = ". ".join(" ".join(words[j : j + 16]) for j in range(0, 160, 16))
            page = {"id": str(i), "url": f"https://bench.test/{i}", "title": title, "text": text}
            f.write(json.dumps(page, ensure_ascii=False) + "\n")
    return vocab


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


async def through_threads(corpus: LocalCorpus, queries: list[str], k: int) -> None:
    await asyncio.gather(*(asyncio.to_thread(corpus.search_sync, q, k) for q in queries))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=20000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "corpus.jsonl"
        vocab = make_corpus(path, args.pages, args.seed)
        size_mb = path.stat().st_size / 1e6
        rng = random.Random(args.seed + 1)
        queries = [
            " ".join(rng.choices(vocab[200:], k=3))
            if i % 10
            else "".join(rng.choices(CJK_POOL, k=4))
            for i in range(args.queries)
        ]

        cold, cold_s = timed(lambda: LocalCorpus(path))
        warm, warm_s = timed(lambda: LocalCorpus(path))
        assert cold.built_index and not warm.built_index

        _, bm25_s = timed(lambda: [warm.rank(q, args.k) for q in queries])
        _, inline_s = timed(lambda: [warm.search_sync(q, args.k) for q in queries])
        _, thread_s = timed(lambda: asyncio.run(through_threads(warm, queries, args.k)))

    n = len(queries)
    print(f"corpus: {args.pages} pages, {size_mb:.1f} MB, analyzer {warm.analyzer.name}")
    print(f"{'measure':<40}{'seconds':>10}{'per query ms':>14}{'queries/s':>11}")
    print(f"{'cold start (read + build + save)':<40}{cold_s:>10.2f}")
    print(f"{'warm start (read + load cache)':<40}{warm_s:>10.2f}")
    for name, secs in [
        ("search: BM25 only", bm25_s),
        ("search: BM25 + snippets, inline", inline_s),
        ("search: BM25 + snippets, to_thread", thread_s),
    ]:
        print(f"{name:<40}{secs:>10.2f}{1000 * secs / n:>14.2f}{n / secs:>11.0f}")
    ratios = (
        f"cold/warm start: {cold_s / warm_s:.1f}x; to_thread/inline: {thread_s / inline_s:.2f}x"
    )
    print(ratios)


if __name__ == "__main__":
    main()
