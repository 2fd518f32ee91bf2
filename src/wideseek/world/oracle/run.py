"""Run the oracle over a suite of the offline world through the real runtime, and sum it up.

Contract. `run_oracle(world, suite, split, ...)` plays every task (or the first `limit`) with
`OracleEngine` inside the real orchestrator, whose search/access tools ask a `LocalCorpus` over
the world's corpus; the benchmark runner scores each trajectory with the offline `TaskScorer`
and appends it to `<out>/trajectories.jsonl` and `<out>/results.jsonl` (resumable: tasks already
in the results are skipped). It returns an `OracleSummary`: mean metrics, time per task and the
size of every agent's context, the budget a model trained on these demonstrations must hold.

This module wires world, agents and eval together; it holds no policy of its own.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from wideseek.agents.orchestrator import Orchestrator
from wideseek.config import AgentConfig
from wideseek.eval.runner import TRAJECTORIES, RunInfo, run_benchmark
from wideseek.eval.task_scoring import TaskScorer
from wideseek.tools.local_corpus import LocalCorpus
from wideseek.types import Task, Trajectory
from wideseek.world.oracle.engine import OracleEngine
from wideseek.world.pages import approx_tokens
from wideseek.world.store import World
from wideseek.world.suites import deep_tasks, wide_tasks

METRICS = {"wide": ("item_f1", "row_f1", "success"), "deep": ("em", "f1")}


@dataclass(frozen=True)
class ContextStats:
    """Sizes of agent contexts (all messages of one agent), in characters and approx. tokens."""

    agents: int
    mean_chars: float
    p50_chars: int
    p90_chars: int
    max_chars: int
    p90_tokens: int
    max_tokens: int


@dataclass
class OracleSummary:
    tasks: int
    metrics: dict[str, float]
    wall_s: float
    mean_task_s: float
    contexts: dict[str, ContextStats] = field(default_factory=dict)
    errors: int = 0


def suite_tasks(world: World, suite: str, split: str, limit: int | None = None) -> list[Task]:
    reader = wide_tasks if suite == "wide" else deep_tasks
    tasks = list(reader(world, split))
    return tasks[:limit] if limit else tasks


def _quantile(sorted_values: list[int], q: float) -> int:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def context_stats(trajectories: Iterator[Trajectory]) -> dict[str, ContextStats]:
    sizes: dict[str, list[tuple[int, int]]] = {}
    for traj in trajectories:
        for agent in traj.agents:
            text = "".join(m.content for m in agent.messages)
            sizes.setdefault(agent.role, []).append((len(text), approx_tokens(text)))
    out = {}
    for role, pairs in sorted(sizes.items()):
        chars = sorted(c for c, _ in pairs)
        tokens = sorted(t for _, t in pairs)
        out[role] = ContextStats(
            agents=len(pairs),
            mean_chars=statistics.fmean(chars),
            p50_chars=_quantile(chars, 0.5),
            p90_chars=_quantile(chars, 0.9),
            max_chars=chars[-1],
            p90_tokens=_quantile(tokens, 0.9),
            max_tokens=tokens[-1],
        )
    return out


def iter_trajectories(path: Path) -> Iterator[Trajectory]:
    """Trajectories of a run file one at a time (train runs hold thousands); a torn last
    line, from a run killed mid-write, is skipped."""
    if not path.exists():
        return
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                try:
                    yield Trajectory.model_validate_json(line)
                except ValueError:
                    continue


async def run_oracle(
    world: World,
    suite: str,
    split: str,
    out: Path,
    mode: str = "multi",
    limit: int | None = None,
    profile: str = "wideseek",
    concurrency: int = 4,
    show_progress: bool = True,
) -> OracleSummary:
    tasks = suite_tasks(world, suite, split, limit)
    config = AgentConfig(mode=mode, profile=profile, seed=0)
    orchestrator = Orchestrator.with_backend(
        OracleEngine(tasks), LocalCorpus(world.corpus_path), config
    )
    info = RunInfo(
        suite=f"world-{suite}-{split}",
        mode=mode,
        profile=config.profile,
        model="oracle",
        trials=1,
        max_subagents=config.max_subagents,
        extra={"world": world.manifest.world_hash, "limit": limit},
    )
    names = METRICS[suite]
    start = time.perf_counter()
    rows = await run_benchmark(
        tasks,
        lambda task, trial: orchestrator.run(task, trial),
        TaskScorer(),
        out,
        info,
        concurrency=concurrency,
        headline=names[0],
        show_progress=show_progress,
    )
    wall = time.perf_counter() - start
    wanted = {t.id for t in tasks}
    rows = [r for r in rows if r.instance_id in wanted]
    metrics = {
        name: statistics.fmean(float(r.scores.get(name, 0.0)) for r in rows) if rows else 0.0
        for name in names
    }
    return OracleSummary(
        tasks=len(rows),
        metrics=metrics,
        wall_s=wall,
        mean_task_s=statistics.fmean(r.duration_s for r in rows) if rows else 0.0,
        contexts=context_stats(
            t for t in iter_trajectories(out / TRAJECTORIES) if t.task.id in wanted
        ),
        errors=sum(1 for r in rows if r.error),
    )
