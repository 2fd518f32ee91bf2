"""Dev evaluation of a checkpoint through the real runtime: the `evaluate` callback of train_sft.

Contract: `dev_eval(model_dir, settings, run_dir) -> dict` loads the checkpoint in a
LocalEngine, runs the first `wide_tasks` wide and `deep_tasks` deep tasks of the world's split
through the Orchestrator with the world's corpus as search backend (benchmark runner, so
trajectories and per-task results land in `run_dir/{wide,deep}/`), scores them with
TaskScorer and returns flat metrics:
- wide_item_f1, wide_row_f1, wide_success; deep_em, deep_f1 (means over tasks);
- call_validity: fraction of turns whose tool calls all parsed (no malformed call);
- finished: fraction of agents that ended with a tool-free answer (no turn/context limit);
- answer_validity: fraction of tasks whose final answer has the required shape (a markdown
  table for wide tasks, a `\\boxed{}` answer for deep ones).
`make_evaluator(settings, out_dir)` wraps it as `evaluate(model_dir, step)`, one run
directory per step. `oracle_eval(settings, run_dir)` runs the world's oracle on the same tasks
under the same limits: the figure a model's scores stand beside.

It knows the runtime's entry points (engine, orchestrator, runner, scorer, world), not training.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from statistics import fmean
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from wideseek.config import AgentConfig
from wideseek.llm.base import Engine
from wideseek.train.sft import Evaluate
from wideseek.types import Failure, Task, Trajectory, read_trajectories


class DevEvalSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    world: str | None = Field(None, description="world directory; None: the shipped world")
    split: Literal["train", "dev", "test"] = "dev"
    wide_tasks: int = Field(30, ge=0, description="first N wide tasks of the split")
    deep_tasks: int = Field(30, ge=0, description="first N deep tasks of the split")
    mode: Literal["multi", "single"] = "multi"
    concurrency: int = Field(8, ge=1, description="tasks run at once (their agents batch)")
    agent: dict[str, Any] = Field(
        default_factory=lambda: {"temperature": 0.0, "seed": 0},
        description="AgentConfig fields (mode is set above); greedy by default",
    )


def turn_metrics(trajectories: list[Trajectory]) -> dict[str, float]:
    """Format validity: parseable calls per turn, agents that finished, well-formed answers."""
    from wideseek.eval.table_extract import find_table_text

    turns = [t for traj in trajectories for _, t in traj.iter_turns()]
    agents = [a for traj in trajectories for a in traj.agents]
    hard = {Failure.TURN_LIMIT, Failure.CONTEXT_OVERFLOW}

    def answer_ok(traj: Trajectory) -> bool:
        answer = traj.final_answer or ""
        if traj.task.kind == "wide":
            return find_table_text(answer) is not None
        return "\\boxed{" in answer

    return {
        "call_validity": fmean(Failure.MALFORMED_CALL not in t.failures for t in turns)
        if turns
        else 0.0,
        "finished": fmean(not hard.intersection(a.failures) for a in agents) if agents else 0.0,
        "answer_validity": fmean(answer_ok(t) for t in trajectories) if trajectories else 0.0,
        "turns_per_task": len(turns) / max(len(trajectories), 1),
    }


def _tasks(settings: DevEvalSettings) -> dict[str, list[Task]]:
    from itertools import islice

    from wideseek.world import load_world
    from wideseek.world.suites import deep_tasks, wide_tasks

    world = load_world(settings.world)
    return {
        "wide": list(islice(wide_tasks(world, settings.split), settings.wide_tasks)),
        "deep": list(islice(deep_tasks(world, settings.split), settings.deep_tasks)),
    }


def agent_config(settings: DevEvalSettings) -> AgentConfig:
    return AgentConfig.model_validate({**settings.agent, "mode": settings.mode})


async def evaluate_engine(
    engine: Engine, settings: DevEvalSettings, run_dir: Path
) -> dict[str, Any]:
    """Run and score the dev tasks with `engine`; trajectories go under run_dir."""
    from wideseek.agents.orchestrator import Orchestrator
    from wideseek.eval.runner import TRAJECTORIES, RunInfo, run_benchmark
    from wideseek.eval.task_scoring import TaskScorer
    from wideseek.tools.local_corpus import LocalCorpus
    from wideseek.world import load_world

    agent = agent_config(settings)
    model_name = getattr(engine, "model_name", "")
    corpus = LocalCorpus(load_world(settings.world).corpus_path)
    orchestrator = Orchestrator.with_backend(engine, corpus, agent)
    scorer = TaskScorer()
    metrics: dict[str, Any] = {}
    trajectories: list[Trajectory] = []
    for suite, tasks in _tasks(settings).items():
        if not tasks:
            continue
        info = RunInfo(
            suite=f"{suite}-{settings.split}",
            mode=settings.mode,
            profile=agent.profile,
            model=model_name,
            trials=1,
        )
        rows = await run_benchmark(
            tasks,
            lambda task, trial: orchestrator.run(task, trial),
            scorer,
            run_dir / suite,
            info,
            concurrency=settings.concurrency,
            headline="item_f1" if suite == "wide" else "em",
            show_progress=False,
        )
        keys = ("item_f1", "row_f1", "success") if suite == "wide" else ("em", "f1")
        for key in keys:
            metrics[f"{suite}_{key}"] = fmean(float(r.scores.get(key, 0.0)) for r in rows)
        trajectories += read_trajectories(run_dir / suite / TRAJECTORIES)
    return {**metrics, **turn_metrics(trajectories)}


def dev_eval(model_dir: str | Path, settings: DevEvalSettings, run_dir: Path) -> dict[str, Any]:
    """Run and score the dev tasks with the model at `model_dir` (see module docstring)."""
    from wideseek.llm.local import LocalEngine

    engine = LocalEngine(
        model_dir, context_length=agent_config(settings).context_length, model_name=str(model_dir)
    )
    return asyncio.run(evaluate_engine(engine, settings, Path(run_dir)))


def oracle_eval(settings: DevEvalSettings, run_dir: Path) -> dict[str, Any]:
    """The oracle's scores on exactly the tasks and agent limits of `dev_eval(settings)`."""
    from wideseek.world.oracle.engine import OracleEngine

    tasks = [t for suite in _tasks(settings).values() for t in suite]
    return asyncio.run(evaluate_engine(OracleEngine(tasks), settings, Path(run_dir)))


def make_evaluator(settings: DevEvalSettings, out_dir: Path) -> Evaluate:
    """`evaluate(model_dir, step)` for train_sft: runs land in out_dir/dev-eval/step-<step>."""

    def evaluate(model_dir: str, step: int) -> dict[str, Any]:
        return dev_eval(model_dir, settings, out_dir / "dev-eval" / f"step-{step}")

    return evaluate
