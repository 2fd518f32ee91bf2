"""Run the oracle over a suite of the offline world through the real runtime, and sum it up.

Contract. `run_oracle(world, suite, split, ...)` plays every task (or the first `limit`) with
`OracleEngine` through the one suite runner (`run_suite`), searching the world's corpus: each
trajectory is scored with the offline `TaskScorer` and appended to `<out>/trajectories.jsonl`
and `<out>/results.jsonl` (resumable: tasks already in the results are skipped). It returns an
`OracleSummary`: mean metrics, time per task and the size of every agent's context, the budget
a model trained on these demonstrations must hold.

It holds no policy of its own: the oracle is `wideseek.world.oracle`, the running is `suite`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from wideseek.config import AgentConfig, Config, ToolsConfig
from wideseek.runtime.suite import run_suite
from wideseek.types import Trajectory
from wideseek.world.oracle.engine import OracleEngine
from wideseek.world.pages import approx_tokens
from wideseek.world.store import World
from wideseek.world.suites import SUITE_METRICS, suite_tasks


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
    tasks = suite_tasks(world, suite, split)[:limit]  # limit None: all of them
    config = Config(
        agent=AgentConfig(mode=mode, profile=profile, seed=0),
        tools=ToolsConfig(corpus=str(world.corpus_path)),
    )
    start = time.perf_counter()
    run = await run_suite(
        tasks,
        config,
        out,
        suite=f"world-{suite}-{split}",
        engine=OracleEngine(tasks, config.agent),
        concurrency=concurrency,
        extra={"world": world.manifest.world_hash, "limit": limit},
        show_progress=show_progress,
    )
    rows = run.rows
    return OracleSummary(
        tasks=len(rows),
        metrics={name: run.summary.get(f"{name}_avg", 0.0) for name in SUITE_METRICS[suite]},
        wall_s=time.perf_counter() - start,
        mean_task_s=statistics.fmean(r.duration_s for r in rows) if rows else 0.0,
        contexts=context_stats(iter(run.trajectories())),
        errors=sum(1 for r in rows if r.error),
    )
