"""Which tasks RL trains on: id filters, a pass-rate window measured before training, and the
order in which flat groups are replaced.

Contract:
- `TaskSelection` is the `select:` section of an RL run file (every field documented).
- `select_pool(tasks_by_suite, selection)`: the configured suites' tasks, kept to the listed ids
  (`ids` and the lines of `ids_file`; an unknown id is an error), then to the first `first` of
  each suite. Called before any model loads, so a bad list is one line at once.
- `PassRates`: each task's outcomes over K rollouts of the start model (`pass-rates.json` in
  the run dir, with the settings that measured them); `rate(task, solved_at)` is the share of
  its rollouts with an outcome >= `solved_at`, and `in_window(pool, window)` keeps the tasks
  whose rate lies in [min, max] (or whose outcomes spread by `min_spread`): those the start
  model solves sometimes, whose groups are likely to carry signal. The trainer measures them
  once, before step 1, and a resumed run reads them back (trained weights would measure
  something else). A run can take another
  run's measurement instead (`measured_in`): the same slice for every seed and mode.
- `step_tasks(pool, step, per_step, seed, suite_of)`: the tasks of step `step` (0-based), a
  seeded order of the pool, cycled (or of each suite's tasks in turn: `balance_suites`): the
  position is the step number, so a resumed run continues with the same tasks.
- `replacement_tasks(pool, exclude, step, seed)`: the tasks that may replace a step's flat
  groups, in a seeded order of their own (a resumed step draws the same ones).
It knows tasks and files; running rollouts is the trainer's job.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from wideseek.errors import UsageError, WideseekError
from wideseek.io import atomic_write_text
from wideseek.runtime.suite import select_tasks
from wideseek.types import Task

PASS_RATES = "pass-rates.json"


class PassRateWindow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min: float = Field(0.1, ge=0, le=1, description="keep tasks solved at least this often")
    max: float = Field(0.9, ge=0, le=1, description="keep tasks solved at most this often")
    samples: int = Field(
        8, ge=1, description="rollouts of each task the start model's rate is measured over (K)"
    )
    solved_at: float = Field(
        0.5,
        gt=0,
        le=1,
        description="a rollout solved its task when its outcome (item F1 of a wide task, the "
        "QA metric of a deep one) is at least this",
    )
    min_spread: float | None = Field(
        None,
        gt=0,
        le=1,
        description="also keep a task whose K outcomes differ by at least this much (highest "
        "- lowest), whatever its rate: a wide task's item F1 varies, and so carries signal, "
        "without reaching solved_at (binary outcomes: any spread is 1); None: the rate only",
    )
    measured_in: str | None = Field(
        None,
        description="a run directory whose measurement (its pass-rates.json, of the same start "
        "model) this run uses instead of measuring its own: every seed and mode of a comparison "
        "then trains on one slice, measured once; None: measure here",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min > self.max:
            raise ValueError(f"min {self.min} > max {self.max}: the window keeps no task")
        return self


class TaskSelection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[str] | None = Field(
        None, description="train only on these task ids (with ids_file: either list's)"
    )
    ids_file: str | None = Field(
        None, description="a file of task ids, one a line (blank lines and # comments skipped)"
    )
    first: int | None = Field(
        None, ge=1, description="the first N tasks of each suite's split (after the id filter)"
    )
    pass_rate: PassRateWindow | None = Field(
        None,
        description="keep the tasks the start model solves within [min, max] of its rollouts, "
        "measured before step 1 (out_dir/pass-rates.json, reused on resume); None: off",
    )
    balance_suites: bool = Field(
        False,
        description="each step draws its tasks suite by suite, in turn (tasks_per_step 4 over "
        "wide and deep: 2 + 2), so the suite with more tasks in the pool does not set the "
        "lead's habits for both (a deep-heavy slice taught the lead to spawn 2-3 subagents "
        "whatever the task); False: one order over the whole pool",
    )
    resample_flat: int = Field(
        0,
        ge=0,
        description="a step's flat groups (every rollout the same reward: no signal) are "
        "replaced by other tasks' groups, at most this many tried per step (0: off); counted "
        "in the metrics (resampled_groups, replaced_groups)",
    )


def read_ids(selection: TaskSelection) -> list[str] | None:
    """The listed ids, in order, without repeats; None when neither list is given."""
    if selection.ids is None and selection.ids_file is None:
        return None
    ids = list(selection.ids or [])
    if selection.ids_file is not None:
        try:
            text = Path(selection.ids_file).read_text(encoding="utf-8")
        except OSError as e:
            raise UsageError(f"select.ids_file {selection.ids_file}: {e.strerror}") from e
        lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
        ids += [line for line in lines if line]
    if not ids:
        raise UsageError("select: the id lists name no task")
    return list(dict.fromkeys(ids))


def select_pool(
    tasks_by_suite: Mapping[str, Sequence[Task]], selection: TaskSelection
) -> list[Task]:
    """The tasks RL draws from, suite by suite (see the module docstring)."""
    pool = [t for tasks in tasks_by_suite.values() for t in tasks]
    ids = read_ids(selection)
    if ids is not None:
        try:
            kept = {t.id for t in select_tasks(pool, ids=ids)}
        except UsageError as e:
            raise UsageError(f"select: {e}") from e
        pool = [t for t in pool if t.id in kept]
    if selection.first is not None:
        first = {t.id for tasks in tasks_by_suite.values() for t in tasks[: selection.first]}
        pool = [t for t in pool if t.id in first]
    if not pool:
        raise UsageError("select: no task left (the first tasks of each suite hold none listed)")
    return pool


class PassRates(BaseModel):
    """The start model's outcomes per task, and the settings (a digest) that measured them."""

    settings: str
    samples: int
    outcomes: dict[str, list[float]]
    model: str | None = None  # the start model as the run file named it (None: not recorded)
    weights: str | None = None  # its weights' digest (model_dir.weights_sha256; None: older)
    world: str | None = None  # the world's hash the rollouts played on (None: older)

    def rate(self, task_id: str, solved_at: float) -> float:
        scores = self.outcomes[task_id]
        return sum(o >= solved_at for o in scores) / len(scores)

    def spread(self, task_id: str) -> float:
        scores = self.outcomes[task_id]
        return max(scores) - min(scores)

    def in_window(self, pool: Sequence[Task], window: PassRateWindow) -> list[Task]:
        def kept(task: Task) -> bool:
            if window.min <= self.rate(task.id, window.solved_at) <= window.max:
                return True
            return window.min_spread is not None and self.spread(task.id) >= window.min_spread

        return [t for t in pool if kept(t)]

    def missing(self, pool: Sequence[Task]) -> list[str]:
        return [t.id for t in pool if t.id not in self.outcomes]

    def write(self, run_dir: Path) -> None:
        atomic_write_text(Path(run_dir) / PASS_RATES, self.model_dump_json(indent=1))

    @classmethod
    def read(cls, run_dir: Path) -> PassRates | None:
        """The run's measurement; None when there is none yet."""
        path = Path(run_dir) / PASS_RATES
        if not path.exists():
            return None
        try:
            return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, ValidationError) as e:
            raise WideseekError(f"{path}: unreadable ({type(e).__name__}); delete it") from e


def step_tasks(
    pool: Sequence[Task],
    step: int,
    per_step: int,
    seed: int,
    suite_of: Mapping[str, str] | None = None,
) -> list[Task]:
    """The tasks of `step` (0-based): a seeded shuffle of the pool, cycled, `per_step` at a
    time. With `suite_of` (task id -> suite: `balance_suites`), slot i of a step goes to the
    pool's suites in turn, each suite cycling through its own seeded shuffle."""
    if suite_of is None:
        return _cycled(pool, random.Random(seed), step * per_step, per_step)
    suites = list(dict.fromkeys(suite_of[t.id] for t in pool))
    tasks: list[Task] = []
    for k, suite in enumerate(suites):
        mine = [t for t in pool if suite_of[t.id] == suite]
        slots = len(range(k, per_step, len(suites)))  # this suite's slots in every step
        tasks += _cycled(mine, random.Random(f"{seed}/{suite}"), step * slots, slots)
    return tasks


def _cycled(pool: Sequence[Task], rng: random.Random, start: int, count: int) -> list[Task]:
    order = list(range(len(pool)))
    rng.shuffle(order)
    return [pool[order[(start + i) % len(pool)]] for i in range(count)]


def replacement_tasks(pool: Sequence[Task], exclude: set[str], step: int, seed: int) -> list[Task]:
    """The tasks that may replace step `step`'s flat groups, in the order they are tried: a
    shuffle seeded by the run's seed and the step, without the step's own tasks."""
    order = [t for t in pool if t.id not in exclude]
    random.Random(f"{seed}/resample/{step}").shuffle(order)
    return order
