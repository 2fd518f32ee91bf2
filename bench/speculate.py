"""Prompt-lookup speculation on real agent work: wide test tasks with and without it.

    python bench/speculate.py --model ADAPTER_DIR [--tasks 3] [--speculate 3]
    python bench/speculate.py --model ADAPTER_DIR --dtype fp32 --int8-decode off   # exactness

One LocalEngine (by default the model's own dtype and int8 decode setting) runs each of the
first N wide test tasks of the bundled world twice, greedy, through the real runtime (multi-
agent, the default model's evaluation limits: lead 4 turns, subagents 5, 256 tokens a
response), once with `speculate` 0 and once with `--speculate K`, alternating which goes first
from task to task so drift in the machine's speed falls on both; the prefix cache is emptied
before every run. It prints per variant: wall seconds per task, forward passes of the decode
loop, generated tokens, tokens per pass, guesses checked and kept, item F1, and how many final
answers are the same in both (in fp32 without int8 decode they are; bf16 and int8 round a pass
over several tokens slightly differently from a one-token pass, so a near-tie may go the other
way and the runs part). Passes and tokens per pass do not depend on what else the machine runs;
wall seconds do.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tempfile
import time

from local_engine import WIDE_AGENT  # bench/ is on the path when run as a script
from wideseek.config import Config, ToolsConfig
from wideseek.llm.local import LocalEngine
from wideseek.runtime import run_suite
from wideseek.types import Task
from wideseek.world.store import load_world
from wideseek.world.suites import suite_tasks


async def run_one(engine: LocalEngine, task: Task, config: Config) -> tuple[dict, str | None]:
    engine.prefix_cache.clear()
    before = dataclasses.replace(engine.stats)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as run_dir:
        run = await run_suite(
            [task], config, run_dir, suite="bench", engine=engine, show_progress=False
        )
        (trajectory,) = run.trajectories()
    figures = {k: v - getattr(before, k) for k, v in vars(engine.stats).items()}
    figures["wall_s"] = time.perf_counter() - start
    figures["item_f1"] = run.summary.get("item_f1_avg", 0.0)
    return figures, trajectory.final_answer


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="model or adapter directory, or a base spec")
    ap.add_argument("--tasks", type=int, default=3, help="the first N wide test tasks")
    ap.add_argument("--speculate", type=int, default=3, help="guesses checked per pass")
    ap.add_argument("--dtype", default="auto", help="weights: auto | bf16 | fp32")
    ap.add_argument("--int8-decode", default="auto", help="auto | on | off")
    args = ap.parse_args()
    world = load_world()
    tasks = suite_tasks(world, "wide", "test")[: args.tasks]
    config = Config(agent=WIDE_AGENT, tools=ToolsConfig(corpus=str(world.corpus_path)))
    engine = LocalEngine(args.model, dtype=args.dtype, int8_decode=args.int8_decode)
    print(f"{args.model}: {engine.dtype_reason}; int8 decode {engine.int8_decode}")
    totals: dict[int, dict[str, float]] = {0: {}, args.speculate: {}}
    same = 0
    for i, task in enumerate(tasks):
        order = [0, args.speculate] if i % 2 == 0 else [args.speculate, 0]
        answers = {}
        for k in order:
            engine.speculate = k
            figures, answers[k] = await run_one(engine, task, config)
            for name, value in figures.items():
                totals[k][name] = totals[k].get(name, 0.0) + value
            print(
                f"  {task.id} speculate {k}: {figures['wall_s']:.1f} s, "
                f"{figures['new_tokens']:.0f} tokens in {figures['steps']:.0f} passes"
            )
        same += answers[0] == answers[args.speculate]
    print(f"\n{'':24}{'speculate 0':>14}{f'speculate {args.speculate}':>14}{'ratio':>9}")
    rows = {
        "wall s per task": lambda t: t["wall_s"] / len(tasks),
        "decode passes": lambda t: t["steps"],
        "generated tokens": lambda t: t["new_tokens"],
        "tokens per pass": lambda t: t["new_tokens"] / max(t["steps"], 1),
        "decode s": lambda t: t["decode_s"],
        "guesses checked": lambda t: t["drafted"],
        "guesses kept": lambda t: t["accepted"],
        "item F1 (mean)": lambda t: t["item_f1"] / len(tasks),
    }
    for label, get in rows.items():
        a, b = get(totals[0]), get(totals[args.speculate])
        ratio = f"{a / b:8.2f}x" if b else ""
        print(f"{label:24}{a:>14.1f}{b:>14.1f}{ratio}")
    print(f"same final answer: {same} of {len(tasks)} tasks")


if __name__ == "__main__":
    asyncio.run(main())
