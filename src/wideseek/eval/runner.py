"""The benchmark runner: every task × trial through the agents, scored, written as it goes.

Layout of a run directory:
  run.json            what was run (suite, mode, profile, model, trials); checked on resume
  trajectories.jsonl  one full Trajectory per (task, trial), appended as each finishes
  results.jsonl       one line per (task, trial): ids, language, scores, cost

Resumable: the results file is the ledger. A (task, trial) with a results line is done and is
skipped when the same command runs again; its trajectory line is written first, so a result
never points to a missing trajectory. Lines are appended and flushed one at a time, so a killed
run loses at most the items in flight (a torn last line is ignored on reading).

The runner knows nothing about how answers are scored: it is given a `Scorer`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

from wideseek.errors import UsageError
from wideseek.io import append_jsonl_line, atomic_write_text, iter_jsonl, repair_torn_tail
from wideseek.progress import run_progress
from wideseek.types import Task, Trajectory, headline_metric

# (task, trajectory) -> metrics such as item_f1, row_f1, success (wide) or em, f1 (qa).
Scorer = Callable[[Task, Trajectory], Awaitable[dict[str, Any]]]
RunOne = Callable[[Task, int], Awaitable[Trajectory]]

RESULTS, TRAJECTORIES, RUN_INFO = "results.jsonl", "trajectories.jsonl", "run.json"


class RunInfo(BaseModel):
    suite: str
    mode: str
    profile: str
    model: str
    trials: int
    max_subagents: int | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class ResultRow(BaseModel):
    instance_id: str
    trial: int
    language: str = "en"
    scores: dict[str, Any] = Field(default_factory=dict)
    reward: float | None = None
    n_subagents: int = 0
    n_turns: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    duration_s: float = 0.0
    failures: dict[str, int] = Field(default_factory=dict)
    error: str | None = None


def scores_by_task(rows: Iterable[ResultRow], key: str) -> dict[str, list[float]]:
    """Each task's `key` score of every trial (rows without a numeric `key` are skipped)."""
    by_task: dict[str, list[float]] = {}
    for row in rows:
        value = row.scores.get(key)
        if isinstance(value, bool | int | float):
            by_task.setdefault(row.instance_id, []).append(float(value))
    return by_task


def read_run_info(run_dir: str | Path) -> RunInfo:
    """A run directory's run.json (raises OSError when it has none)."""
    return RunInfo.model_validate_json((Path(run_dir) / RUN_INFO).read_text(encoding="utf-8"))


def read_results(run_dir: str | Path) -> list[ResultRow]:
    path = Path(run_dir) / RESULTS
    if not path.exists():
        return []
    return [ResultRow.model_validate(row) for _, row in iter_jsonl(path)]


# The agents' settings (run.json: extra.config.agent) that shape a run's figures beside its
# model: a resumed run must share them, and a paired comparison names those that differ.
AGENT_SETTINGS = ("profile", "max_subagents", "max_tool_calls", "lead_turns", "subagent_turns",
                  "single_turns", "context_length", "max_response_tokens",
                  "lead_response_tokens", "temperature", "top_p", "top_k")  # fmt: skip


def agent_settings(info: RunInfo) -> dict[str, Any]:
    """The AGENT_SETTINGS a run recorded ({} for a run that recorded no agent config)."""
    agent = info.extra.get("config", {}).get("agent", {})
    return {k: agent[k] for k in AGENT_SETTINGS if k in agent}


def engine_backend(info: RunInfo) -> str | None:
    """The local engine a run decoded with (run.json: extra.config.engine.backend; None for a
    server's run or one that recorded no engine config): torch and llama.cpp round otherwise."""
    engine = info.extra.get("config", {}).get("engine", {})
    return None if engine.get("base_url") else engine.get("backend")


def prepare_run_dir(run_dir: Path, info: RunInfo) -> set[tuple[str, int]]:
    """Create or reopen a run directory; returns the (task, trial) pairs already done."""
    run_dir.mkdir(parents=True, exist_ok=True)
    info_path = run_dir / RUN_INFO
    if info_path.exists():
        old = read_run_info(run_dir)
        keys = ("suite", "mode", "profile", "model", "max_subagents")
        changed = [
            f"{k} {getattr(old, k)!r} there, {getattr(info, k)!r} now"
            for k in keys
            if getattr(old, k) != getattr(info, k)
        ]
        # a world's pages change with its version while its task ids stay: results of the
        # old pages would be kept as if the new ones had been read
        worlds = old.extra.get("world"), info.extra.get("world")
        if None not in worlds and worlds[0] != worlds[1]:
            changed.append(f"world {worlds[0][:16]} there, {worlds[1][:16]} now")
        # so do a local model's engine (llama.cpp's kernels round otherwise than torch's)
        backends = engine_backend(old), engine_backend(info)
        if None not in backends and backends[0] != backends[1]:
            changed.append(f"engine.backend {backends[0]!r} there, {backends[1]!r} now")
        # limits change answers while the model and tasks stay: the rows would mix them
        was, now = agent_settings(old), agent_settings(info)
        changed += [f"{k} {was[k]!r} there, {now[k]!r} now" for k in was.keys() & now.keys()
                    if was[k] != now[k]]  # fmt: skip
        if changed:
            raise UsageError(
                f"{run_dir} holds a run with other settings ({'; '.join(changed)}); "
                "use another --out directory or remove it"
            )
    atomic_write_text(info_path, info.model_dump_json(indent=2))
    for name in (RESULTS, TRAJECTORIES):
        repair_torn_tail(run_dir / name)
    return {(r.instance_id, r.trial) for r in read_results(run_dir)}


def result_row(task: Task, traj: Trajectory, scores: dict[str, Any]) -> ResultRow:
    usage = traj.usage()
    return ResultRow(
        instance_id=task.id,
        trial=traj.trial,
        language=task.language,
        scores=scores,
        reward=traj.reward,
        n_subagents=len(traj.subagents),
        n_turns=sum(len(a.turns) for a in traj.agents),
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        duration_s=traj.duration_s,
        failures=traj.failure_counts(),
        error=traj.error,
    )


async def run_benchmark(
    tasks: Sequence[Task],
    run_one: RunOne,
    scorer: Scorer,
    run_dir: str | Path,
    info: RunInfo,
    concurrency: int = 4,
    headline: str | None = None,
    show_progress: bool = True,
) -> list[ResultRow]:
    """Run every missing (task, trial), score it, append it; return all rows of the run.

    A trajectory without a reward gets its task's headline score (`headline_metric`), or the
    `headline` key when given."""
    run_dir = Path(run_dir)
    done = prepare_run_dir(run_dir, info)
    todo = [(t, k) for k in range(info.trials) for t in tasks if (t.id, k) not in done]
    gate = asyncio.Semaphore(concurrency)
    keys = {headline} if headline else {headline_metric(t.kind) for t in tasks}
    label = keys.pop() if len(keys) == 1 else "score"
    total = 0.0
    count = 0

    progress = run_progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[running]}"),
        TimeElapsedColumn(),
        disable=not show_progress,
    )

    async def one(task: Task, trial: int, bar: Any) -> None:
        nonlocal total, count
        async with gate:
            traj = await run_one(task, trial)
            traj.scores = await scorer(task, traj)
            key = headline or headline_metric(task.kind)
            if traj.reward is None:
                traj.reward = traj.scores.get(key)
        # Trajectory first: a results line always has its trajectory.
        append_jsonl_line(run_dir / TRAJECTORIES, traj.model_dump_json())
        row = result_row(task, traj, traj.scores)
        append_jsonl_line(run_dir / RESULTS, row.model_dump_json())
        value = traj.scores.get(key)
        if isinstance(value, int | float):
            total, count = total + float(value), count + 1
        progress.update(bar, advance=1, running=f"{label} {total / max(count, 1):.3f}")

    with progress:
        bar = progress.add_task(
            f"{info.suite} ({len(done)} done before)", total=len(todo), running=""
        )
        await asyncio.gather(*(one(t, k, bar) for t, k in todo))
    return read_results(run_dir)
