"""Run the agents on the offline world: the one entry of every world run.

`wideseek eval world` (and its aliases `train eval` and `world oracle`), dev evaluation during
SFT and RL (`train/dev_eval.py`) and the width sweep all call `run_world`; RL rollouts take
its config (`world_config`) and limits (`agent_with_limits`). Contract:

`run_world(world, tasks, out, agent=..., limits=..., engine= | model= | oracle=, config=...)`
- `tasks`: suite → its tasks (`world_tasks` picks them: split, language, ids, first N,
  held-out wording); each suite is one run of the one suite runner (`suite.run_suite`) named
  `run_name(suite, split, reworded)`, in `out` itself or, with `per_suite_dirs`, in `out/<suite>`.
  Resumable as every suite run is: what `out` holds is skipped.
- the engine: a given one (not closed here: a model being trained), a local model spec
  (resolved once, opened and closed here), the world's oracle (`OracleEngine` over these
  tasks), or else the one `config` describes (a server, a model dir, the shipped model).
- search: the world's own corpus, unless `config.tools` names another backend.
- limits: ONE set, `EVAL_LIMITS`. A limit is taken from, in order, `limits` (flags), the fields
  `agent` sets itself (a config file, `--set`, a run file), what the model recommends
  (wideseek.json: the limits it was shipped and scored under), then `EVAL_LIMITS`; the context
  never above what the engine holds. `limits=None` plays under `agent`'s own limits untouched:
  only the oracle's demonstrations do that, because SFT learned from runs under the paper's
  limits (AgentConfig's defaults) and the turn hints in every prompt carry them.

It returns a `WorldRun`: each suite's `SuiteRun`, the limits used, and the flat figures dev
evaluation reports (`metrics()`: `<suite>_<metric>` means and the format-validity figures).
It knows the runtime (assembly, suite runner) and the world, nothing of training.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Any

from wideseek.config import AgentConfig, Config
from wideseek.errors import UsageError
from wideseek.eval.judges import Judge
from wideseek.llm.engine import Engine
from wideseek.llm.model_dir import RecommendedLimits
from wideseek.llm.resolved_model import ModelSpec, ResolvedModel, resolve_model
from wideseek.runtime.assembly import close_engine, local_model_dir, open_engine
from wideseek.runtime.suite import SuiteRun, run_suite, select_tasks
from wideseek.types import Failure, Task, Trajectory
from wideseek.world.store import World
from wideseek.world.suites import SUITE_METRICS, suite_tasks

# The limits of a run, by AgentConfig field name (None: not set here). The same type a model
# directory records the limits it was scored under in (wideseek.json), which `train ship`
# copies from `train eval`'s output: what a model is evaluated with is what it recommends.
EvalLimits = RecommendedLimits
LIMIT_FIELDS: tuple[str, ...] = tuple(EvalLimits.model_fields)

# The one set of evaluation limits, where neither the caller, the agent config nor the model
# sets one. Sized for the small local model on a CPU: a 4,096-token context per agent and 512
# tokens per response keep a task to minutes; the turn limits are the paper's (single agent:
# AgentConfig's 50). A large model over a server needs more: give the flags.
EVAL_LIMITS = EvalLimits(lead_turns=10, subagent_turns=20, max_response_tokens=512,
                         context_length=4096)  # fmt: skip
NO_FLAGS = EvalLimits()  # a caller that sets no limit of its own: the order below decides

TURN_METRICS = ("call_validity", "finished", "answer_validity", "turns_per_task")
_HARD_FAILURES = {Failure.TURN_LIMIT, Failure.CONTEXT_OVERFLOW, Failure.STUCK}


def run_name(suite: str, split: str, reworded: bool = False) -> str:
    """The name of a world run in run.json and reports: world-<suite>-<split>[-reworded]."""
    return f"world-{suite}-{split}{'-reworded' if reworded else ''}"


def world_tasks(
    world: World,
    suite: str,
    split: str,
    *,
    language: str | None = None,
    ids: str | Sequence[str] | None = None,
    limit: int | None = None,
    reworded: bool = False,
) -> list[Task]:
    """A suite's tasks of one split, narrowed (`suite.select_tasks`), in held-out wordings
    with `reworded` (world/reworded.py)."""
    chosen = select_tasks(suite_tasks(world, suite, split), language, ids, limit)
    if reworded:
        from wideseek.world.reworded import reword

        chosen = [reword(t) for t in chosen]
    return chosen


def world_config(world: World, config: Config | None = None) -> Config:
    """`config` (default: all defaults) searching `world`'s corpus, unless it names a backend."""
    config = config or Config()
    tools = config.tools
    if tools.corpus or tools.retrieval_url or tools.web is not None:
        return config
    return config.model_copy(
        update={"tools": tools.model_copy(update={"corpus": str(world.corpus_path)})}
    )


def resolve_limits(
    agent: AgentConfig, limits: EvalLimits, recommended: EvalLimits | None = None
) -> dict[str, int]:
    """The run's limits (see the module docstring for the order), by AgentConfig field name."""
    own = {k: getattr(agent, k) for k in LIMIT_FIELDS if k in agent.model_fields_set}
    own = {k: v for k, v in own.items() if v is not None}
    return {
        **EVAL_LIMITS.given(),
        **(recommended.given() if recommended else {}),
        **own,
        **limits.given(),
    }


def agent_with_limits(
    agent: AgentConfig,
    limits: EvalLimits | None,
    recommended: EvalLimits | None = None,
    engine_context: int | None = None,
) -> tuple[AgentConfig, dict[str, int]]:
    """`agent` under the run's limits (set explicitly, so a model's generation config cannot
    replace them) and those limits; `limits=None`: `agent` as it is, no limits."""
    if limits is None:
        return agent, {}
    chosen = resolve_limits(agent, limits, recommended)
    if engine_context and chosen["context_length"] > engine_context:
        chosen["context_length"] = engine_context  # no agent plans for more than the model holds
    return agent.model_copy(update=chosen), chosen


def recommended_limits(engine: Engine) -> EvalLimits | None:
    """The limits a local engine's model recommends (wideseek.json); None for the others."""
    resolved = getattr(engine, "resolved", None)
    return resolved.limits if isinstance(resolved, ResolvedModel) else None


def turn_metrics(trajectories: Sequence[Trajectory]) -> dict[str, float]:
    """Format validity: turns whose calls all parsed, agents that finished (no turn/context
    limit, not stuck), answers the scorer read (its `parsed` flag), turns per task."""
    turns = [t for traj in trajectories for _, t in traj.iter_turns()]
    agents = [a for traj in trajectories for a in traj.agents]
    return {
        "call_validity": fmean(Failure.MALFORMED_CALL not in t.failures for t in turns)
        if turns
        else 0.0,
        "finished": fmean(not _HARD_FAILURES.intersection(a.failures) for a in agents)
        if agents
        else 0.0,
        "answer_validity": fmean(bool(t.scores.get("parsed")) for t in trajectories)
        if trajectories
        else 0.0,
        "turns_per_task": len(turns) / max(len(trajectories), 1),
    }


@dataclass
class WorldRun:
    """A finished world run: one `SuiteRun` per suite, the limits its agents ran under ({}:
    the agent's own), its wall time and the local engine that decoded it (None: a server, the
    oracle)."""

    runs: dict[str, SuiteRun]
    limits: dict[str, int]
    wall_s: float
    engine: str | None = None  # the local engine it decoded with (torch, llama.cpp)

    def suite_metrics(self, suite: str) -> dict[str, float]:
        """The means a suite is judged by (`SUITE_METRICS`), by bare name."""
        summary = self.runs[suite].summary
        return {key: summary.get(f"{key}_avg", 0.0) for key in SUITE_METRICS[suite]}

    def trajectories(self) -> list[Trajectory]:
        return [t for run in self.runs.values() for t in run.trajectories()]

    def metrics(self) -> dict[str, float]:
        """`<suite>_<metric>` for every suite run, then `TURN_METRICS` over all of them."""
        figures = {
            f"{suite}_{key}": value
            for suite in self.runs
            for key, value in self.suite_metrics(suite).items()
        }
        return {**figures, **turn_metrics(self.trajectories())}


async def run_world(
    world: World,
    tasks: Mapping[str, Sequence[Task]],
    out: str | Path,
    *,
    split: str,
    agent: AgentConfig | None = None,
    limits: EvalLimits | None = NO_FLAGS,
    engine: Engine | None = None,
    model: ModelSpec = None,
    oracle: bool = False,
    config: Config | None = None,
    reworded: bool = False,
    per_suite_dirs: bool = False,
    name: str | None = None,
    trials: int = 1,
    concurrency: int = 4,
    judge: Judge | None = None,
    extra: dict[str, Any] | None = None,
    show_progress: bool = True,
) -> WorldRun:
    """Run and score `tasks` on `world` (see the module docstring). `agent` replaces
    `config.agent`; give at most one of `engine`, `model` and `oracle`. `name` replaces
    `run_name` in run.json (RL names a step's rollouts, whose tasks mix suites, so
    `WorldRun.metrics` does not apply to them: read their trajectories)."""
    if sum((engine is not None, model is not None, oracle)) > 1:
        raise UsageError("run_world: give at most one of engine, model and oracle")
    config = world_config(world, config)
    agent = agent if agent is not None else config.agent
    out = Path(out)
    runnable = {suite: list(ts) for suite, ts in tasks.items() if ts}
    if not runnable:
        raise UsageError("no tasks to run")
    if len(runnable) > 1 and not per_suite_dirs:
        raise UsageError("several suites need one directory each (per_suite_dirs)")
    started = time.perf_counter()

    # the model is resolved before it loads: its recommended limits shape the engine's config
    resolved = None
    if model is not None:
        resolved = resolve_model(model)
    elif engine is None and not oracle and (directory := local_model_dir(config)) is not None:
        resolved = resolve_model(directory)
    recommended = resolved.limits if resolved else None
    if engine is not None:
        recommended = recommended_limits(engine)
    agent, chosen = agent_with_limits(agent, limits, recommended)
    config = config.model_copy(update={"agent": agent})

    own_engine = engine is None
    if oracle:
        from wideseek.world.oracle.engine import OracleEngine

        engine = OracleEngine([t for ts in runnable.values() for t in ts], agent)
    elif engine is None:
        engine = await open_engine(config, resolved)
    try:
        held = getattr(engine, "context_length", None)
        if chosen and isinstance(held, int) and held < agent.context_length:
            agent, chosen = agent_with_limits(agent, limits, recommended, held)
            config = config.model_copy(update={"agent": agent})
        runs = {}
        for suite, chosen_tasks in runnable.items():
            runs[suite] = await run_suite(
                chosen_tasks,
                config,
                out / suite if per_suite_dirs else out,
                suite=name or run_name(suite, split, reworded),
                engine=engine,
                trials=trials,
                judge=judge,
                concurrency=concurrency,
                extra={"world": world.manifest.world_hash, **(extra or {})},
                show_progress=show_progress,
            )
    finally:
        if own_engine and not oracle:
            await close_engine(engine)
    backend = getattr(engine, "backend", None)
    return WorldRun(runs=runs, limits=chosen, wall_s=time.perf_counter() - started, engine=backend)
