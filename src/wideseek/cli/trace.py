"""`wideseek trace show FILE`: a trajectory as a tree (lead → subagents → tool calls)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from wideseek.cli.common import command_group
from wideseek.cli.views import trace_tree
from wideseek.errors import UsageError
from wideseek.types import read_trajectories

app = command_group(help="Inspect trajectory files.", no_args_is_help=True)


@app.command("show")
def show(
    path: Annotated[Path, typer.Argument(help="trajectory file (.json or .jsonl)")],
    task: Annotated[str | None, typer.Option(help="only the trajectory of this task id")] = None,
    text: Annotated[bool, typer.Option(help="also show responses and tool results")] = False,
) -> None:
    """Render trajectories as trees with timings, tool calls and failures."""
    trajectories = read_trajectories(path)  # a bad file: a DataError naming file and line
    if not trajectories:
        raise UsageError(f"{path}: no complete trajectory in the file")
    if task is not None:
        trajectories = [t for t in trajectories if t.task.id == task]
        if not trajectories:
            raise UsageError(f"{path}: no trajectory for task {task!r}")
    console = Console()
    for traj in trajectories:
        console.print(trace_tree(traj, show_text=text))
