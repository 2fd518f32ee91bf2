"""Progress of long runs: a rich bar on a terminal, a plain line now and then in a log.

rich draws nothing while its console is not a terminal: a run under `nohup ... > log` (how a
CPU training or evaluation runs for hours) logs its bar once, when it exits. `run_progress()`
returns rich's `Progress` on a terminal and a `LineProgress` elsewhere, which prints one line
per task at most every `every_s` seconds and when the task completes, e.g.

    sft loss 0.452: 23/190 (12%), 0:25:13 elapsed, ~3:03:10 left

and, when the run leaves the display by an exception (an interrupt, an error, a training's
restart for memory), a last line for each task that moved since its last one, so the log says
where it stopped. Both take the same calls (`add_task`, `update`, used as a context manager),
so a caller writes its progress once."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.progress import Progress, ProgressColumn


@dataclass
class _Task:
    description: str
    total: float | None
    completed: float
    fields: dict[str, Any]
    started: float
    start_completed: float  # done before this process: not counted in the rate
    printed: float  # when its last line was printed
    printed_completed: float  # what that line said was done


def _clock(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))


def _count(value: float) -> str:
    """1,250,000 or 12.5: thousands grouped, never 1.25e+06."""
    return f"{value:,.2f}".rstrip("0").rstrip(".")


class LineProgress:
    """rich's Progress calls, printed as plain lines (see the module docstring)."""

    def __init__(self, console: Console, every_s: float = 60.0) -> None:
        self.console, self.every_s = console, every_s
        self.tasks: list[_Task] = []

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            return
        now = time.monotonic()
        for task in self.tasks:
            if task.completed != task.printed_completed:
                self._print(task, now)

    def add_task(
        self, description: str, total: float | None = 100.0, completed: float = 0, **fields: Any
    ) -> int:
        now = time.monotonic()
        task = _Task(description, total, completed, fields, now, completed, now, completed)
        self.tasks.append(task)
        return len(self.tasks) - 1

    def update(
        self,
        task_id: int,
        *,
        advance: float = 0,
        completed: float | None = None,
        total: float | None = None,
        description: str | None = None,
        **fields: Any,
    ) -> None:
        task = self.tasks[task_id]
        task.completed = completed if completed is not None else task.completed + advance
        task.total = total if total is not None else task.total
        task.description = description if description is not None else task.description
        task.fields.update(fields)
        now = time.monotonic()
        done = task.total is not None and task.completed >= task.total
        if done or now - task.printed >= self.every_s:
            self._print(task, now)

    def _print(self, task: _Task, now: float) -> None:
        task.printed, task.printed_completed = now, task.completed
        self.console.print(self.line(task, now), markup=False, highlight=False, soft_wrap=True)

    def line(self, task: _Task, now: float) -> str:
        """`description fields: completed/total (pct), elapsed, ~left` (what is known of it)."""
        head = " ".join([task.description, *(str(v) for v in task.fields.values() if v != "")])
        elapsed = now - task.started
        parts = [_count(task.completed)]
        if task.total:
            done = f"{_count(task.completed)}/{_count(task.total)}"
            parts = [f"{done} ({task.completed / task.total:.0%})"]
        parts.append(f"{_clock(elapsed)} elapsed")
        rate = (task.completed - task.start_completed) / elapsed if elapsed > 0 else 0.0
        if task.total and rate > 0 and task.completed < task.total:
            parts.append(f"~{_clock((task.total - task.completed) / rate)} left")
        return f"{head}: {', '.join(parts)}"


def run_progress(
    *columns: str | ProgressColumn,
    console: Console | None = None,
    disable: bool = False,
    every_s: float = 60.0,
) -> Progress | LineProgress:
    """A progress display for a long run: rich's bar with `columns` on a terminal (or nothing
    when `disable`), plain lines every `every_s` seconds elsewhere."""
    console = console or Console(stderr=True)
    if disable or draws_live(console):
        return Progress(*columns, console=console, disable=disable)
    return LineProgress(console, every_s)


def draws_live(console: Console | None = None) -> bool:
    """Whether `console` (stderr's by default) shows a live bar: a terminal as rich sees one
    (FORCE_COLOR and TTY_COMPATIBLE count) or a notebook; a log file does not."""
    console = console or Console(stderr=True)
    return console.is_terminal or console.is_jupyter
