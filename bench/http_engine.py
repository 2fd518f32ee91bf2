"""How much wall time HttpEngine adds, and whether its concurrency cap overlaps calls.

A loopback fake OpenAI server answers every call after a fixed latency. N chat calls are sent
at once through one engine with different `max_concurrency` caps; the ideal wall time is
latency * ceil(N / cap). Prints wall time, the ideal, their ratio, and the most calls the server
saw in flight at once.

    python bench/http_engine.py [--calls 64] [--latency 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the fake server

from fake_openai import FakeOpenAIServer
from wideseek.llm.engine import GenerateRequest
from wideseek.llm.http import HttpEngine
from wideseek.types import Message


async def run(base_url: str, calls: int, cap: int) -> float:
    async with HttpEngine(base_url, "fake-model", max_concurrency=cap) as engine:
        requests = [
            GenerateRequest(messages=[Message(role="user", content=f"q{i}")]) for i in range(calls)
        ]
        # Warm the connection pool: one open connection per slot, as in a long run.
        await asyncio.gather(*(engine.generate(r) for r in requests[:cap]))
        start = time.perf_counter()
        await asyncio.gather(*(engine.generate(r) for r in requests))
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.1)
    args = parser.parse_args()
    print(f"{args.calls} calls, {args.latency * 1000:.0f} ms server latency per call")
    print(f"{'cap':>5} {'wall s':>8} {'ideal s':>8} {'ratio':>6} {'max in flight':>14}")
    for cap in (1, 4, 16, 64):
        with FakeOpenAIServer(latency_s=args.latency) as srv:
            wall = asyncio.run(run(srv.base_url, args.calls, cap))
            ideal = args.latency * math.ceil(args.calls / cap)
            print(
                f"{cap:>5} {wall:>8.2f} {ideal:>8.2f} {wall / ideal:>6.2f} {srv.max_in_flight:>14}"
            )


if __name__ == "__main__":
    main()
