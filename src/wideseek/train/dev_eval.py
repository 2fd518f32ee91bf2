"""Dev evaluation of a checkpoint through the one world entry: the `evaluate` callback of train_sft.

Contract: `dev_eval(model, settings, run_dir) -> dict` runs the first `wide_tasks` wide and
`deep_tasks` deep tasks of the world's split with `model` (a model dir, or a `ResolvedModel`),
`evaluate_engine` with an engine already open (RL's policy), `oracle_eval` with the world's
oracle: the figure a model's scores stand beside. All three are `runtime.run_world` (the same
orchestrator, model defaults, scorer, search backend and evaluation limits as `wideseek eval
world`, of which `train eval` is an alias): trajectories and per-task results land in
`run_dir/{wide,deep}/`, and the flat metrics come back (`WorldRun.metrics`):
- wide_item_f1, wide_row_f1, wide_success; deep_em, deep_f1 (means over tasks);
- call_validity: fraction of turns whose tool calls all parsed (no malformed call);
- finished: fraction of agents that ended with a tool-free answer (no turn/context limit);
- answer_validity: fraction of tasks whose final answer the scorer read (a table that parsed
  with the required columns for wide tasks, a complete non-empty `\\boxed{}` for deep ones):
  the RL reward's format check.
The limits the settings' `agent` leaves unset come from the model's recommendation, else the
one set of evaluation limits (`runtime.world_run.EVAL_LIMITS`).
`make_evaluator(settings, out_dir)` wraps `dev_eval` as `evaluate(model_dir, step)`, one run
directory per step.

It knows the runtime's world entry, not training.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from wideseek.config import AgentConfig
from wideseek.llm.engine import Engine
from wideseek.llm.resolved_model import ModelSpec
from wideseek.runtime.world_run import TURN_METRICS, WorldRun, run_world, world_tasks
from wideseek.train.sft import Evaluate
from wideseek.types import Task
from wideseek.world import World, load_world
from wideseek.world.suites import SUITE_METRICS


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
        description="AgentConfig fields (mode is set above); greedy by default; the limits "
        "left unset: the model's recommendation, else the evaluation limits (EVAL_LIMITS)",
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


def metric_names(settings: DevEvalSettings) -> list[str]:
    """The keys `evaluate_engine(settings)` returns (suites with no task left out)."""
    counts = {"wide": settings.wide_tasks, "deep": settings.deep_tasks}
    suites = [f"{s}_{k}" for s, n in counts.items() if n for k in SUITE_METRICS[s]]
    return [*suites, *TURN_METRICS]


def dev_tasks(settings: DevEvalSettings, world: World) -> dict[str, list[Task]]:
    """The first `wide_tasks` wide and `deep_tasks` deep tasks of the split (none skipped)."""
    counts = {"wide": settings.wide_tasks, "deep": settings.deep_tasks}
    return {
        suite: world_tasks(world, suite, settings.split, limit=n, reworded=settings.reworded)
        for suite, n in counts.items()
        if n
    }


def agent_config(settings: DevEvalSettings) -> AgentConfig:
    return AgentConfig.model_validate({**settings.agent, "mode": settings.mode})


async def run_dev_tasks(
    settings: DevEvalSettings,
    run_dir: Path,
    world: World | None = None,
    *,
    engine: Engine | None = None,
    model: ModelSpec = None,
    oracle: bool = False,
) -> WorldRun:
    """The dev tasks run with `engine`, `model` or the oracle (one of them) into run_dir."""
    world = world or load_world(settings.world)
    return await run_world(
        world,
        dev_tasks(settings, world),
        run_dir,
        split=settings.split,
        agent=agent_config(settings),
        engine=engine,
        model=model,
        oracle=oracle,
        reworded=settings.reworded,
        per_suite_dirs=True,
        concurrency=settings.concurrency,
        show_progress=False,
    )


async def evaluate_engine(
    engine: Engine, settings: DevEvalSettings, run_dir: Path, world: World | None = None
) -> dict[str, Any]:
    """Run and score the dev tasks with `engine` (not closed); trajectories go under run_dir."""
    run = await run_dev_tasks(settings, Path(run_dir), world, engine=engine)
    return run.metrics()


def dev_eval(model: ModelSpec, settings: DevEvalSettings, run_dir: Path) -> dict[str, Any]:
    """Run and score the dev tasks with `model` (a model dir, or one already resolved)."""
    return asyncio.run(run_dev_tasks(settings, Path(run_dir), model=model)).metrics()


def oracle_eval(settings: DevEvalSettings, run_dir: Path) -> dict[str, Any]:
    """The oracle's scores on exactly the tasks and agent limits of `dev_eval(settings)`."""
    return asyncio.run(run_dev_tasks(settings, Path(run_dir), oracle=True)).metrics()


def make_evaluator(settings: DevEvalSettings, out_dir: Path) -> Evaluate:
    """`evaluate(model_dir, step)` for train_sft: runs land in out_dir/dev-eval/step-<step>."""

    def evaluate(model_dir: str, step: int) -> dict[str, Any]:
        return dev_eval(model_dir, settings, out_dir / "dev-eval" / f"step-{step}")

    return evaluate
