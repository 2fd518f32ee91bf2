"""`wideseek ask "QUESTION"`: one question through the agents; prints the answer, keeps a trace."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markdown import Markdown

from wideseek.cli import app
from wideseek.cli.common import note_default_engine
from wideseek.cli.options import with_run_config
from wideseek.cli.views import LiveAgentView
from wideseek.config import Config
from wideseek.runtime import open_orchestrator
from wideseek.runtime.table_request import TableRequest, table_request
from wideseek.types import Task, Trajectory, write_trajectories


async def _ask(config: Config, task: Task, live: bool) -> Trajectory:
    view = LiveAgentView() if live else None
    async with open_orchestrator(config, observer=view) as orchestrator:
        if view is None:
            return await orchestrator.run(task)
        with view:
            return await orchestrator.run(task)


@app.command()
@with_run_config
def ask(
    question: Annotated[str, typer.Argument(help="the question, e.g. a table you want filled")],
    cfg: Config,
    out: Annotated[Path, typer.Option("--out", help="where to write the trajectory (JSON)")] = Path(
        "trajectory.json"
    ),
    qa: Annotated[bool, typer.Option("--qa", help="a short-answer question, not a table")] = False,
    columns: Annotated[
        str | None,
        typer.Option(
            help="the table's columns, comma-separated, key column first (default: read from "
            "the question, e.g. '... cities of Morocco with their population and latitude' → "
            "City, Population, Latitude)"
        ),
    ] = None,
    live: Annotated[bool, typer.Option(help="show the agents while they work")] = True,
) -> None:
    """Answer QUESTION with the lead agent and parallel subagents (or one agent with --mode single).

    With no --engine and no --model it runs the small model shipped with wideseek on the bundled
    offline world, with no network. The final answer is printed; the full trajectory (every turn
    of every agent) goes to --out, viewable with `wideseek trace show`. A table question is
    asked with its columns stated (--columns, or read from the question) and the answer format
    the agents are trained on; the columns are printed before the agents start.
    """
    console = Console()
    task = Task(id="ask", question=question, kind="qa" if qa else "wide")
    if not qa:
        request = _table_request(question, columns)
        _print_columns(console, request)
        task = task.model_copy(update={"question": request.question})
        task.metadata["asked"] = question
    out.parent.mkdir(parents=True, exist_ok=True)  # before the run, not after it is lost
    note_default_engine(cfg)
    traj = asyncio.run(_ask(cfg, task, live))
    write_trajectories(out, [traj])
    if traj.error:
        console.print(f"[red]run failed:[/red] {traj.error.splitlines()[0]}")
    elif traj.final_answer:
        console.print(Markdown(traj.final_answer))
    else:
        console.print("[yellow]no final answer[/yellow]")
    failures = traj.failure_counts()
    usage = traj.usage()
    tokens = usage.prompt_tokens + usage.completion_tokens
    summary = f"{len(traj.subagents)} subagents, {traj.duration_s:.1f}s, {tokens} tokens"
    if failures:
        summary += ", failures: " + ", ".join(f"{k}×{v}" for k, v in failures.items())
    console.print(f"[dim]{summary}; trajectory → {out}[/dim]")
    if traj.error or not traj.final_answer:
        raise typer.Exit(1)


def _table_request(question: str, columns: str | None) -> TableRequest:
    try:
        return table_request(question, None if columns is None else columns.split(","))
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--columns") from None


def _print_columns(console: Console, request: TableRequest) -> None:
    if request.columns is None:
        console.print("[dim]columns: the model's choice (name them with --columns)[/dim]")
        return
    how = " (read from the question; --columns to change)" if request.inferred else ""
    console.print(f"[dim]columns: {' | '.join(request.columns)}{how}[/dim]")
