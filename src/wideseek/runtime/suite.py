"""The one suite runner: tasks in, a scored and resumable run directory out.

`run_suite(tasks, config, run_dir, ...)` is what `wideseek eval`, `wideseek world oracle`,
`wideseek train eval` (dev evaluation during SFT) and RL rollouts all call. It opens the
orchestrator `config` describes (`open_orchestrator`: the same engine, backend and model
defaults as `ask`) over the configured engine, or over a given one (a model being trained, the
world's oracle); runs every (task, trial) through the benchmark runner, which appends each
trajectory and its result line as it finishes and skips what a previous run finished; scores
each with `TaskScorer`; and returns a `SuiteRun` with the rows of exactly these tasks and one
summary of them (`eval.report.summarize`: Avg@N / Max@N / Pass@N, EM / F1, costs).

`select_tasks` is the one way to narrow a task list (language, ids, first N).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wideseek.agents.orchestrator import AgentObserver
from wideseek.config import Config
from wideseek.errors import UsageError
from wideseek.eval.judges import Judge
from wideseek.eval.report import summarize
from wideseek.eval.runner import TRAJECTORIES, ResultRow, RunInfo, run_benchmark
from wideseek.eval.task_scoring import TaskScorer
from wideseek.llm.engine import Engine
from wideseek.runtime.assembly import open_orchestrator
from wideseek.types import Task, Trajectory, iter_trajectories


@dataclass
class SuiteRun:
    """A finished suite run: its directory, the config it ran with (the model's own sampling
    defaults filled in), one row per (task, trial), and their summary."""

    run_dir: Path
    config: Config
    rows: list[ResultRow]
    summary: dict[str, float]

    def trajectories(self) -> list[Trajectory]:
        """The trajectories of this run's tasks, read back from the run directory."""
        wanted = {r.instance_id for r in self.rows}
        return [t for t in iter_trajectories(self.run_dir / TRAJECTORIES) if t.task.id in wanted]


def select_tasks(
    tasks: Sequence[Task],
    language: str | None = None,
    ids: str | Sequence[str] | None = None,
    limit: int | None = None,
) -> list[Task]:
    """Filter by language and id (unknown ids are an error), then keep the first `limit`.
    `ids` is a list or a comma-separated string."""
    kept = [t for t in tasks if t.language == language] if language else list(tasks)
    if ids:
        wanted = [i.strip() for i in (ids.split(",") if isinstance(ids, str) else ids)]
        wanted = [i for i in wanted if i]
        known = {t.id for t in kept}
        unknown = [i for i in wanted if i not in known]
        if unknown:
            raise UsageError(f"unknown task ids: {', '.join(unknown[:5])}")
        kept = [t for t in kept if t.id in set(wanted)]
    kept = kept[:limit] if limit else kept
    if not kept:
        raise UsageError("no tasks left after filtering")
    return kept


async def run_suite(
    tasks: Sequence[Task],
    config: Config,
    run_dir: str | Path,
    *,
    suite: str,
    engine: Engine | None = None,
    trials: int = 1,
    judge: Judge | None = None,
    lenient_tables: bool = False,
    concurrency: int = 4,
    observer: AgentObserver | None = None,
    extra: dict[str, Any] | None = None,
    show_progress: bool = True,
) -> SuiteRun:
    """Run and score every (task, trial) not yet in `run_dir` (see the module docstring).

    `suite` names the run in run.json and reports; `engine` replaces the configured one (it is
    not closed here); `lenient_tables` departs from the official table reading (see
    `eval.table_extract`); `extra` is recorded in run.json beside the full config."""
    run_dir = Path(run_dir)
    async with open_orchestrator(config, observer, engine) as orchestrator:
        config = config.model_copy(update={"agent": orchestrator.config})
        # the local engine it decodes with, not `auto`: torch and llama.cpp round otherwise
        backend = getattr(orchestrator.engine, "backend", None)
        if backend is not None:
            engine_cfg = config.engine.model_copy(update={"backend": backend})
            config = config.model_copy(update={"engine": engine_cfg})
        agent = config.agent
        settings = json.loads(config.model_dump_json(exclude={"engine": {"api_key_env"}}))
        info = RunInfo(
            suite=suite,
            mode=agent.mode,
            profile=agent.profile,
            model=getattr(orchestrator.engine, "model_name", "") or "",
            trials=trials,
            max_subagents=agent.max_subagents if agent.mode == "multi" else None,
            extra={"config": settings, **(extra or {})},
        )
        rows = await run_benchmark(
            tasks,
            orchestrator.run,
            TaskScorer(judge, lenient_tables=lenient_tables),
            run_dir,
            info,
            concurrency=concurrency,
            show_progress=show_progress,
        )
    wanted = {t.id for t in tasks}
    rows = [r for r in rows if r.instance_id in wanted]
    return SuiteRun(run_dir=run_dir, config=config, rows=rows, summary=summarize(rows))
