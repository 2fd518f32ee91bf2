"""`wideseek report DIR`: a markdown report (and PNG plots) of one run directory or of many."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wideseek.cli import app
from wideseek.errors import UsageError
from wideseek.eval.report import find_runs, write_report


@app.command()
def report(
    path: Annotated[Path, typer.Argument(help="a run directory, or a directory of runs")],
    plots: Annotated[bool, typer.Option(help="also draw PNG plots (needs matplotlib)")] = True,
) -> None:
    """Write a markdown report (and plots) of benchmark runs into DIR/report.md.

    Avg@N / Max@N of item and row F1, success Avg@N / Pass@N, overall and per language; cell
    accuracy per metric type; worst tasks; failure flags; token and time cost; plots of
    per-task item F1 and of any width sweep (runs with other --subagents in one directory,
    such as the one `wideseek eval sweep` writes, with its own sweep.md beside).
    """
    if not path.is_dir():
        raise UsageError(f"{path}: not a directory")
    if not find_runs(path):
        raise UsageError(f"{path}: no run directories (run.json + results.jsonl) inside")
    typer.echo(f"report → {write_report(path, plots=plots)}")
