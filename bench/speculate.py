"""Prompt-lookup speculation on real agent work: wide test tasks with and without it.

    python bench/speculate.py --model ADAPTER_DIR [--tasks 3] [--variants 0 3:1 3:4 3:0]
    python bench/speculate.py --model ADAPTER_DIR --dtype fp32 --int8-decode off   # exactness

One LocalEngine (by default the model's own dtype and int8 decode setting) runs each of the
first N wide test tasks of the bundled world once per variant, greedy, through the real runtime
(multi-agent, the default model's evaluation limits: lead 4 turns, subagents 5, 256 tokens a
response). A variant K:B checks K prompt-lookup guesses per pass while at most B requests
decode together (engine.speculate, engine.speculate_batch; B 0: any batch; 3:1 is speculation
for a request decoding alone only). The variants' order rotates from task to task so drift in
the machine's speed falls on all; the prefix cache is emptied before every run. It prints per
variant: wall seconds per task, forward passes of the decode loop, generated tokens, tokens
per pass, guesses checked and kept, item F1, and how many final answers equal the first
variant's (in fp32 without int8 decode they all do; bf16 and int8 round a pass over several
tokens slightly differently from a one-token pass, so a near-tie may go the other way and the
runs part). Passes and tokens per pass do not depend on what else the machine runs; wall
seconds do.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tempfile
import time

from local_engine import WIDE_AGENT  # bench/ is on the path when run as a script
from wideseek.config import DEFAULT_SPECULATE_BATCH, Config, ToolsConfig
from wideseek.llm.engine import GenerateRequest, SamplingParams
from wideseek.llm.local import LocalEngine
from wideseek.runtime import run_suite
from wideseek.runtime.world_run import run_world
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


def parse_variant(spec: str) -> tuple[int, int]:
    """`K` or `K:B` -> (guesses per pass, most requests decoding together; 0: any)."""
    guesses, _, batch = spec.partition(":")
    return int(guesses), int(batch or 0)


async def side_by_side(engine: LocalEngine, rows: int, variants: dict, reps: int = 2) -> None:
    """`rows` subagents' report turns decoded together: the prompt of each subagent's last
    turn in the oracle's demonstrations of wide dev tasks (pages read, values to copy out),
    greedy, 128 new tokens; per variant the decode passes, tokens and the best wall time."""
    world = load_world()
    with tempfile.TemporaryDirectory() as out:
        run = await run_world(
            world, {"wide": suite_tasks(world, "wide", "dev")[:rows]}, out, split="dev",
            oracle=True, show_progress=False,
        )  # fmt: skip
        trajectories = run.trajectories()  # read from `out`, before it goes
    agents = [a for t in trajectories for a in t.agents if a.role == "subagent"][:rows]
    prompts = [
        engine.tokenizer.encode(engine.renderer.render_text(
            [m.to_openai() for m in a.messages[:-1]], tools=a.tool_schemas or None
        ))
        for a in agents
    ]  # fmt: skip
    print(f"\n{len(prompts)} subagents' report turns decoded together (greedy, 128 new tokens):")
    sampling = SamplingParams(temperature=0, max_tokens=128)
    for v, (k, batch) in variants.items():
        walls = []
        for _ in range(reps):
            engine.speculate, engine.speculate_batch = k, batch
            engine.prefix_cache.clear()
            before = dataclasses.replace(engine.stats)
            start = time.perf_counter()
            await asyncio.gather(
                *(engine.generate(GenerateRequest(prompt_token_ids=p, sampling=sampling))
                  for p in prompts)
            )  # fmt: skip
            walls.append(time.perf_counter() - start)
            d = {k2: v2 - getattr(before, k2) for k2, v2 in vars(engine.stats).items()}
        print(
            f"  speculate {v}: {min(walls):.1f} s, decode {d['decode_s']:.1f} s, "
            f"{d['new_tokens']:.0f} tokens in {d['steps']:.0f} passes, "
            f"{d['accepted']:.0f} of {d['drafted']:.0f} guesses kept"
        )


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="model or adapter directory, or a base spec")
    ap.add_argument("--tasks", type=int, default=3, help="the first N wide test tasks")
    ap.add_argument(
        "--variants",
        nargs="+",
        default=["0", f"3:{DEFAULT_SPECULATE_BATCH}"],
        help="K[:B]: K guesses per pass while at most B requests decode together (0: any)",
    )
    ap.add_argument(
        "--side-by-side",
        type=int,
        default=0,
        metavar="N",
        help="also: N subagents' report turns decoded together, per variant",
    )
    ap.add_argument("--dtype", default="auto", help="weights: auto | bf16 | fp32")
    ap.add_argument("--int8-decode", default="auto", help="auto | on | off")
    args = ap.parse_args()
    world = load_world()
    tasks = suite_tasks(world, "wide", "test")[: args.tasks]
    config = Config(agent=WIDE_AGENT, tools=ToolsConfig(corpus=str(world.corpus_path)))
    engine = LocalEngine(args.model, dtype=args.dtype, int8_decode=args.int8_decode)
    print(f"{args.model}: {engine.dtype_reason}; int8 decode {engine.int8_decode}")
    variants = {v: parse_variant(v) for v in args.variants}
    if args.side_by_side:
        await side_by_side(engine, args.side_by_side, variants)
    if not tasks:
        return
    totals: dict[str, dict[str, float]] = {v: {} for v in variants}
    answers: dict[str, list[str | None]] = {v: [] for v in variants}
    for i, task in enumerate(tasks):
        names = list(variants)
        for v in names[i % len(names) :] + names[: i % len(names)]:  # rotated task by task
            engine.speculate, engine.speculate_batch = variants[v]
            figures, answer = await run_one(engine, task, config)
            answers[v].append(answer)
            for name, value in figures.items():
                totals[v][name] = totals[v].get(name, 0.0) + value
            print(
                f"  {task.id} speculate {v}: {figures['wall_s']:.1f} s, "
                f"{figures['new_tokens']:.0f} tokens in {figures['steps']:.0f} passes"
            )
    first = next(iter(variants))
    header = "".join(f"{'speculate ' + v:>16}" for v in variants)
    print(f"\n{'':24}{header}   (ratios: {first} / each)")
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
        base = get(totals[first])
        cells = ""
        for v in variants:
            value = get(totals[v])
            ratio = f"({base / value:.2f}x)" if value and v != first else ""
            cells += f"{value:>9.1f}{ratio:>7}"
        print(f"{label:24}{cells}")
    for v in list(variants)[1:]:
        same = sum(a == b for a, b in zip(answers[first], answers[v], strict=True))
        print(f"same final answer as speculate {first}: speculate {v} {same} of {len(tasks)}")


if __name__ == "__main__":
    asyncio.run(main())
