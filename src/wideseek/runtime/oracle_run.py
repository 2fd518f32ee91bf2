"""The world's oracle over a suite: its demonstrations, its scores, and its agents' contexts.

Contract. `run_oracle(world, suite, split, out, ...)` plays every task (or the first `limit`)
with the world's oracle through the one world entry (`world_run.run_world`, oracle=True),
searching the world's corpus, under the agent's own limits (AgentConfig's defaults, the
paper's): these runs are SFT's demonstrations, and the limits are written into their prompts
(turn hints), so they are not the evaluation limits. Each trajectory is scored offline and
appended to `<out>/trajectories.jsonl` and `<out>/results.jsonl` (resumable: tasks already in
the results are skipped). `wordings` asks the tasks in people's words ("people", or "mixed"
with the templates: world/people_wordings.py), a run of its own. It returns an `OracleSummary`:
mean metrics, time per task and the size of every agent's context, the budget a model trained
on these demonstrations must hold.

It holds no policy of its own: the oracle is `wideseek.world.oracle`, the running is
`world_run`. The oracle as a figure beside a model, under the model's limits, is
`run_world(..., oracle=True)` with limits (what `eval world --oracle` does).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from wideseek.config import AgentConfig
from wideseek.runtime.world_run import run_name, run_world, world_tasks
from wideseek.types import Trajectory
from wideseek.world.pages import approx_tokens
from wideseek.world.people_wordings import Wordings, training_wordings
from wideseek.world.store import World


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
    wordings: Wordings = "template",
) -> OracleSummary:
    """Play the oracle on `suite`'s `split` (first `limit` tasks) into `out`; see the module
    docstring."""
    run = await run_world(
        world,
        {suite: training_wordings(world_tasks(world, suite, split, limit=limit), wordings)},
        out,
        split=split,
        agent=AgentConfig(mode=mode, profile=profile, seed=0),
        limits=None,  # the demonstrations' own: see the module docstring
        oracle=True,
        concurrency=concurrency,
        extra={"limit": limit},
        # another wording is another run: its name keeps a resumed run from mixing the two
        name=None if wordings == "template" else f"{run_name(suite, split)}-{wordings}",
        show_progress=show_progress,
    )
    rows = run.runs[suite].rows
    return OracleSummary(
        tasks=len(rows),
        metrics=run.suite_metrics(suite),
        wall_s=run.wall_s,
        mean_task_s=statistics.fmean(r.duration_s for r in rows) if rows else 0.0,
        contexts=context_stats(iter(run.trajectories())),
        errors=sum(1 for r in rows if r.error),
    )
