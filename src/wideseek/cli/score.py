"""`wideseek score`: score existing answers to WideSearch tasks (ours or any system's).

Thin: parses options, builds the judge, calls `eval.response_scoring`, prints a rich summary.
Bad files and unknown instance ids end in one line (a `WideseekError`). Answers the judge failed on
score 0 (as upstream) and are still written, then the command exits 1 saying how many.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from wideseek.cli import app
from wideseek.cli.options import LenientTablesOpt, with_judge
from wideseek.errors import UsageError
from wideseek.eval.judge_client import ChatCompleter
from wideseek.eval.judges import Judge
from wideseek.eval.response_scoring import (
    ScoredAnswer,
    read_responses,
    score_responses,
    summarise,
    write_scores,
)
from wideseek.eval.widesearch_data import load_widesearch_tasks
from wideseek.eval.widesearch_scorer import ScoreOptions


class TableBlockOption(StrEnum):
    first = "first"
    last = "last"


# The figures `score` prints, each as `summarize` names it (see eval/report.py).
_COLUMNS = {
    "item F1 avg": "item_f1_avg",
    "item F1 max": "item_f1_max",
    "row F1 avg": "row_f1_avg",
    "row F1 max": "row_f1_max",
    "success avg": "success_avg",
    "pass": "success_pass",
}


def _print_summary(groups: dict[str, dict[str, float]]) -> None:
    table = Table(title="WideSearch scores (Avg@N / Max@N over each task's trials)")
    for name in ("group", "tasks", "answers", *_COLUMNS):
        table.add_column(name, justify="left" if name == "group" else "right")
    for group, figures in groups.items():
        cells = [f"{figures.get(key, 0.0):.4f}" for key in _COLUMNS.values()]
        table.add_row(group, str(figures["tasks"]), str(figures["runs"]), *cells)
    Console().print(table)


async def _run(
    tasks_path: Path,
    gold_dir: Path,
    responses_path: Path,
    judge: Judge,
    completer: ChatCompleter | None,
    options: ScoreOptions,
) -> tuple[list[ScoredAnswer], dict[str, dict[str, float]]]:
    try:
        tasks = load_widesearch_tasks(tasks_path)
        answers = read_responses(responses_path)
        scored = await score_responses(answers, tasks, gold_dir, judge, options)
    finally:
        if completer is not None:
            await completer.aclose()
    return scored, summarise(scored, tasks)


@app.command()
@with_judge
def score(
    judge: tuple[Judge, ChatCompleter | None],
    tasks: Annotated[Path, typer.Option(help="WideSearch task file (widesearch.jsonl)")],
    gold_dir: Annotated[Path, typer.Option(help="directory of <instance_id>.csv gold tables")],
    responses: Annotated[
        Path, typer.Option(help="JSON lines: instance_id, optional trial, response")
    ],
    out: Annotated[Path | None, typer.Option(help="write one JSON line per answer")] = None,
    table_block: Annotated[
        TableBlockOption, typer.Option(help="first ```markdown block, or last after </think>")
    ] = TableBlockOption.first,
    reconcile_int_float: Annotated[
        bool, typer.Option(help="cast int columns to float when the other side is float")
    ] = False,
    dedup_after_normalise: Annotated[
        bool, typer.Option(help="also drop rows whose keys collide after normalising")
    ] = False,
    lenient_tables: LenientTablesOpt = False,
) -> None:
    """Score answers to WideSearch tasks: item/row precision, recall, F1 and success."""
    chosen, completer = judge
    if out is not None and not out.parent.is_dir():  # found out before scoring, not after
        raise UsageError(f"{out}: cannot write scores, {out.parent} is not a directory")
    options = ScoreOptions(
        table_block=table_block.value,
        reconcile_int_float=reconcile_int_float,
        dedup_after_normalise=dedup_after_normalise,
        lenient_tables=lenient_tables,
    )
    scored, rows = asyncio.run(_run(tasks, gold_dir, responses, chosen, completer, options))
    if out is not None:
        write_scores(out, scored)
    _print_summary(rows)
    judge_failures = [s.msg for s in scored if s.msg.startswith("judge error")]
    if judge_failures:  # scores were written, but they are not what the judge would give
        raise UsageError(f"{len(judge_failures)} answer(s) scored 0, {judge_failures[0]}")
