"""Dev evaluation of a checkpoint through the real runtime: the `evaluate` callback of train_sft.

Contract: `dev_eval(model, settings, run_dir) -> dict` loads the checkpoint (a model dir, or a
`ResolvedModel`) as the runtime loads any local model, runs the first `wide_tasks` wide and
`deep_tasks` deep tasks of the world's split through the one suite runner (`runtime.run_suite`:
the same orchestrator, model defaults and scorer as `wideseek eval`) with the world's corpus as
search backend, so trajectories and per-task results land in `run_dir/{wide,deep}/`, and
returns flat metrics:
- wide_item_f1, wide_row_f1, wide_success; deep_em, deep_f1 (means over tasks);
- call_validity: fraction of turns whose tool calls all parsed (no malformed call);
- finished: fraction of agents that ended with a tool-free answer (no turn/context limit);
- answer_validity: fraction of tasks whose final answer the scorer read (a table that parsed
  with the required columns for wide tasks, a complete non-empty `\\boxed{}` for deep ones):
  the RL reward's format check.
`make_evaluator(settings, out_dir)` wraps it as `evaluate(model_dir, step)`, one run
directory per step. `oracle_eval(settings, run_dir)` runs the world's oracle on the same tasks
under the same limits: the figure a model's scores stand beside.

It knows the runtime's entry points (engine, suite runner, world), not training.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from statistics import fmean
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from wideseek.config import AgentConfig, Config, ToolsConfig
from wideseek.llm.base import Engine
from wideseek.llm.resolved_model import ModelSpec, resolve_model
from wideseek.runtime import close_engine, open_engine, run_suite
from wideseek.train.sft import Evaluate
from wideseek.types import Failure, Task, Trajectory
from wideseek.world import World, load_world
from wideseek.world.suites import SUITE_METRICS, suite_tasks


class DevEvalSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    world: str | None = Field(None, description="world directory; None: the shipped world")
    split: Literal["train", "dev", "test"] = Field("dev", description="the world split")
    wide_tasks: int = Field(30, ge=0, description="first N wide tasks of the split")
    deep_tasks: int = Field(30, ge=0, description="first N deep tasks of the split")
    mode: Literal["multi", "single"] = Field("multi", description="lead+subagents or one agent")
    reworded: bool = Field(False, description="ask in held-out wordings (world/reworded.py)")
    concurrency: int = Field(8, ge=1, description="tasks run at once (their agents batch)")
    agent: dict[str, Any] = Field(
        default_factory=lambda: {"temperature": 0.0, "seed": 0},
        description="AgentConfig fields (mode is set above); greedy by default",
    )

    @field_validator("agent")
    @classmethod
    def _agent_fields(cls, agent: dict[str, Any]) -> dict[str, Any]:
        """Checked when the run file loads (kept as given: the model's recommendations fill
        what it leaves unset), so a typo is one line before any model loads."""
        try:
            AgentConfig.model_validate(agent)
        except ValidationError as e:
            err = e.errors()[0]
            raise ValueError(f"{'.'.join(map(str, err['loc']))}: {err['msg']}") from None
        return agent


TURN_METRICS = ("call_validity", "finished", "answer_validity", "turns_per_task")


def metric_names(settings: DevEvalSettings) -> list[str]:
    """The keys `evaluate_engine(settings)` returns (suites with no task left out)."""
    counts = {"wide": settings.wide_tasks, "deep": settings.deep_tasks}
    suites = [f"{s}_{k}" for s, n in counts.items() if n for k in SUITE_METRICS[s]]
    return [*suites, *TURN_METRICS]


def turn_metrics(trajectories: list[Trajectory]) -> dict[str, float]:
    """Format validity: parseable calls per turn, agents that finished, well-formed answers."""
    from wideseek.train.rl.rewards import answer_parsed

    turns = [t for traj in trajectories for _, t in traj.iter_turns()]
    agents = [a for traj in trajectories for a in traj.agents]
    hard = {Failure.TURN_LIMIT, Failure.CONTEXT_OVERFLOW, Failure.STUCK}

    return {
        "call_validity": fmean(Failure.MALFORMED_CALL not in t.failures for t in turns)
        if turns
        else 0.0,
        "finished": fmean(not hard.intersection(a.failures) for a in agents) if agents else 0.0,
        "answer_validity": fmean(answer_parsed(t.task, t) for t in trajectories)
        if trajectories
        else 0.0,
        "turns_per_task": len(turns) / max(len(trajectories), 1),
    }


def dev_tasks(settings: DevEvalSettings, world: World) -> dict[str, list[Task]]:
    """The first `wide_tasks` wide and `deep_tasks` deep tasks of the split."""
    counts = {"wide": settings.wide_tasks, "deep": settings.deep_tasks}
    chosen = {suite: suite_tasks(world, suite, settings.split)[:n] for suite, n in counts.items()}
    if settings.reworded:
        from wideseek.world.reworded import reword

        chosen = {suite: [reword(t) for t in tasks] for suite, tasks in chosen.items()}
    return chosen


def agent_config(settings: DevEvalSettings) -> AgentConfig:
    return AgentConfig.model_validate({**settings.agent, "mode": settings.mode})


def _config(settings: DevEvalSettings, world: World) -> Config:
    return Config(agent=agent_config(settings), tools=ToolsConfig(corpus=str(world.corpus_path)))


async def evaluate_engine(
    engine: Engine, settings: DevEvalSettings, run_dir: Path, world: World | None = None
) -> dict[str, Any]:
    """Run and score the dev tasks with `engine`; trajectories go under run_dir."""
    world = world or load_world(settings.world)
    config = _config(settings, world)
    metrics: dict[str, Any] = {}
    trajectories: list[Trajectory] = []
    for suite, tasks in dev_tasks(settings, world).items():
        if not tasks:
            continue
        run = await run_suite(
            tasks,
            config,
            run_dir / suite,
            suite=f"world-{suite}-{settings.split}",
            engine=engine,
            concurrency=settings.concurrency,
            show_progress=False,
        )
        for key in SUITE_METRICS[suite]:
            metrics[f"{suite}_{key}"] = run.summary.get(f"{key}_avg", 0.0)
        trajectories += run.trajectories()
    return {**metrics, **turn_metrics(trajectories)}


def dev_eval(model: ModelSpec, settings: DevEvalSettings, run_dir: Path) -> dict[str, Any]:
    """Run and score the dev tasks with `model` (a model dir, or one already resolved; see
    module docstring)."""
    world = load_world(settings.world)
    resolved = resolve_model(model)

    async def go() -> dict[str, Any]:
        engine = await open_engine(_config(settings, world), resolved)
        try:
            return await evaluate_engine(engine, settings, Path(run_dir), world)
        finally:
            await close_engine(engine)

    return asyncio.run(go())


def oracle_eval(settings: DevEvalSettings, run_dir: Path) -> dict[str, Any]:
    """The oracle's scores on exactly the tasks and agent limits of `dev_eval(settings)`."""
    from wideseek.world.oracle.engine import OracleEngine

    world = load_world(settings.world)
    tasks = [t for suite in dev_tasks(settings, world).values() for t in suite]
    engine = OracleEngine(tasks, agent_config(settings))
    return asyncio.run(evaluate_engine(engine, settings, Path(run_dir), world))


def make_evaluator(settings: DevEvalSettings, out_dir: Path) -> Evaluate:
    """`evaluate(model_dir, step)` for train_sft: runs land in out_dir/dev-eval/step-<step>."""

    def evaluate(model_dir: str, step: int) -> dict[str, Any]:
        return dev_eval(model_dir, settings, out_dir / "dev-eval" / f"step-{step}")

    return evaluate
