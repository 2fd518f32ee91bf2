"""Do subagents run in parallel? Wall time of one task with 1, 2, 4 and 8 subagents.

A loopback fake OpenAI server adds a fixed latency to every model call and plays a fixed policy
(tests/fake_policy.py): the lead delegates one subtask per country, each subagent makes three
calls (search, access, report), the lead then writes the table. The whole client path is real:
HttpEngine, agent loop, lead delegation tool, BM25 search and access over a corpus file.

With subagents in parallel the wall time stays near 5 model calls whatever the width; run one
after another it would grow as 2 + 3 x width calls. Prints wall time per width, the ratio to
1 subagent, and the ratio to the sequential estimate.

    python bench/parallel.py [--latency 0.2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # fake server + policy

from fake_openai import FakeOpenAIServer
from fake_policy import COUNTRIES, CapitalsPolicy, question, write_corpus
from wideseek.config import Config
from wideseek.runtime import open_orchestrator
from wideseek.types import Task


async def one_task(cfg: Config, width: int) -> tuple[float, int]:
    names = list(COUNTRIES)[:width]
    async with open_orchestrator(cfg) as orchestrator:
        start = time.perf_counter()
        traj = await orchestrator.run(Task(id=f"w{width}", question=question(names)))
        wall = time.perf_counter() - start
    if traj.error or len(traj.subagents) != width or names[-1] not in (traj.final_answer or ""):
        raise SystemExit(f"width {width}: the run went wrong ({traj.error or traj.final_answer})")
    return wall, len(traj.subagents)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per model call")
    parser.add_argument("--repeats", type=int, default=3, help="runs per width (best is kept)")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeOpenAIServer(responder=CapitalsPolicy(), latency_s=args.latency) as srv,
    ):
        corpus = write_corpus(Path(tmp) / "corpus.jsonl")
        cfg = Config.model_validate(
            {"engine": {"base_url": srv.base_url}, "tools": {"corpus": str(corpus)}}
        )
        print(f"latency per model call {args.latency:.3f} s, best of {args.repeats}")
        print(f"{'subagents':>9} {'wall s':>8} {'vs 1':>6} {'sequential est. s':>18} {'vs seq':>7}")
        base = None
        for width in (1, 2, 4, 8):
            wall = min(asyncio.run(one_task(cfg, width))[0] for _ in range(args.repeats))
            base = base or wall
            sequential = (2 + 3 * width) * args.latency
            print(
                f"{width:>9} {wall:>8.3f} {wall / base:>6.2f} {sequential:>18.2f} "
                f"{wall / sequential:>7.2f}"
            )
        print(f"server saw at most {srv.max_in_flight} calls in flight")


if __name__ == "__main__":
    main()
