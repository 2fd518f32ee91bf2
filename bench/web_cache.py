"""Benchmark of the web cache: lookups per second with many concurrent callers.

Side by side in one run, against the loopback fake Serper of tests/test_web_fakes.py:
- uncached: `WebBackend.search` with the cache off, every call an HTTP round trip to
  127.0.0.1 (no added latency: the most favourable case for the network; a real API answers
  in hundreds of milliseconds, not the sub-millisecond of loopback);
- cached: the same calls once the cache is warm (normalise, key, SQLite read in a worker
  thread, decode, audit record);
- raw cache: `WebCache.get` alone, to show what the backend layer costs on top.

    python bench/web_cache.py [--callers 50] [--lookups 5000] [--queries 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the fake server
from test_web_fakes import FakeWeb
from wideseek.tools.web import open_web_backend
from wideseek.tools.web.cache import cache_key

KEY_ENV = "WIDESEEK_BENCH_WEB_KEY"


async def rate(callers: int, lookups: int, one: Callable[[int], Awaitable[object]]) -> float:
    """Lookups per second when `callers` coroutines share `lookups` calls of `one(i)`."""
    counter = iter(range(lookups))

    async def caller() -> None:
        for i in counter:  # the callers drain one shared iterator
            await one(i)

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return lookups / (time.perf_counter() - start)


async def run(web: FakeWeb, cache_path: Path, callers: int, lookups: int, queries: int) -> None:
    words = [f"capital of country {i}" for i in range(queries)]
    settings = {"serper": {"max_concurrency": callers}, "timeout_s": 30.0}
    plain = open_web_backend(web.config(KEY_ENV, **settings))
    cached = open_web_backend(web.config(KEY_ENV, cache=True, cache_path=cache_path, **settings))
    assert cached.cache is not None

    for q in words:  # warm the cache (and check the fake answers)
        assert len(await cached.search(q, 5)) == 5
    base = cached.searcher.base_url
    keys = [cache_key("serper", "search", {"query": q, "k": 5}, base_url=base) for q in words]
    assert await cached.cache.get(keys[0]) is not None

    uncached = await rate(callers, lookups, lambda i: plain.search(words[i % queries], 5))
    hits = await rate(callers, lookups, lambda i: cached.search(words[i % queries], 5))
    raw = await rate(callers, lookups, lambda i: cached.cache.get(keys[i % queries]))
    assert cached.cache.available

    print(f"web cache: {callers} concurrent callers, {lookups} lookups over {queries} queries")
    print(f"{'path':<44}{'lookups/s':>12}{'vs uncached':>14}")
    rows = [
        ("uncached: HTTP to the 127.0.0.1 fake Serper", uncached),
        ("cached: WebBackend.search, warm cache", hits),
        ("raw: WebCache.get alone", raw),
    ]
    for name, value in rows:
        print(f"{name:<44}{value:>12,.0f}{value / uncached:>13.1f}x")
    await plain.aclose()
    await cached.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callers", type=int, default=50)
    parser.add_argument("--lookups", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    os.environ[KEY_ENV] = "bench-key"
    with FakeWeb({"serper": "bench-key"}, latency_s=0.0) as web, tempfile.TemporaryDirectory() as d:
        asyncio.run(run(web, Path(d) / "web.sqlite", args.callers, args.lookups, args.queries))


if __name__ == "__main__":
    main()
