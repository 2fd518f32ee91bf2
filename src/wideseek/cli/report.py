"""`wideseek report DIR`: a markdown report (and PNG plots) of one run directory or of many."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wideseek.cli import app
from wideseek.errors import UsageError
from wideseek.eval.report import against_lines, find_runs, write_report


@app.command()
def report(
    path: Annotated[Path, typer.Argument(help="a run directory, or a directory of runs")],
    plots: Annotated[bool, typer.Option(help="also draw PNG plots (needs matplotlib)")] = True,
    against: Annotated[
        Path | None,
        typer.Option(
            help="another run (or directory of runs) on the same tasks: compare task by task "
            "(wide with wide, deep with deep) and print the comparison"
        ),
    ] = None,
) -> None:
    """Write a markdown report (and plots) of benchmark runs into DIR/report.md.

    Avg@N / Max@N of item and row F1, success Avg@N / Pass@N, overall and per language; cell
    accuracy per metric type; worst tasks; failure flags; token and time cost; plots of
    per-task item F1 and of any width sweep (runs with other --subagents in one directory,
    such as the one `wideseek eval sweep` writes, with its own sweep.md beside). With
    --against: per task, which run scored higher, and a bootstrap interval of the mean
    difference (is it more than the noise of a few tasks?).
    """
    for run in (path, against) if against is not None else (path,):
        if not run.is_dir():
            raise UsageError(f"{run}: not a directory")
        try:
            find_runs(run)
        except FileNotFoundError as e:
            raise UsageError(str(e)) from None
    try:
        comparison = against_lines(path, against) if against is not None else []
    except ValueError as e:
        raise UsageError(str(e)) from None
    if comparison:
        typer.echo("\n".join(comparison))
    from wideseek.runtime.stage_attribution import stage_lines

    written = write_report(path, plots=plots, against=against, analyses=(stage_lines,))
    typer.echo(f"report → {written}")
