"""`wideseek score`: score existing answers to WideSearch tasks (ours or any system's).

Thin: parses options, builds the judge, calls `eval.response_scoring`, prints a rich summary.
Bad files and unknown instance ids end in one line (`UserError`). Answers the judge failed on
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
from wideseek.cli.common import UserError
from wideseek.cli.options import with_judge
from wideseek.eval.judge_client import ChatCompleter
from wideseek.eval.judges import Judge
from wideseek.eval.response_scoring import (
    ScoredAnswer,
    SummaryRow,
    read_responses,
    score_responses,
    summarise,
    write_scores,
)
from wideseek.eval.widesearch_data import WideSearchDataError, load_widesearch_tasks
from wideseek.eval.widesearch_scorer import ScoreOptions


class TableBlockOption(StrEnum):
    first = "first"
    last = "last"


def _print_summary(rows: list[SummaryRow]) -> None:
    table = Table(title="WideSearch scores (means over answers)")
    for name in ("group", "answers", "item F1", "row F1", "success"):
        table.add_column(name, justify="left" if name == "group" else "right")
    for r in rows:
        table.add_row(
            r.group, str(r.answers), f"{r.item_f1:.4f}", f"{r.row_f1:.4f}", f"{r.success_rate:.3f}"
        )
    Console().print(table)


async def _run(
    tasks_path: Path,
    gold_dir: Path,
    responses_path: Path,
    judge: Judge,
    completer: ChatCompleter | None,
    options: ScoreOptions,
) -> tuple[list[ScoredAnswer], list[SummaryRow]]:
    try:
        tasks = load_widesearch_tasks(tasks_path)
        answers = read_responses(responses_path)
        scored = await score_responses(answers, tasks, gold_dir, judge, options)
    except WideSearchDataError as e:
        raise UserError(str(e)) from e
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
) -> None:
    """Score answers to WideSearch tasks: item/row precision, recall, F1 and success."""
    chosen, completer = judge
    if out is not None and not out.parent.is_dir():  # found out before scoring, not after
        raise UserError(f"{out}: cannot write scores, {out.parent} is not a directory")
    options = ScoreOptions(
        table_block=table_block.value,
        reconcile_int_float=reconcile_int_float,
        dedup_after_normalise=dedup_after_normalise,
    )
    scored, rows = asyncio.run(_run(tasks, gold_dir, responses, chosen, completer, options))
    if out is not None:
        write_scores(out, scored)
    _print_summary(rows)
    judge_failures = [s.msg for s in scored if s.msg.startswith("judge error")]
    if judge_failures:  # scores were written, but they are not what the judge would give
        raise UserError(f"{len(judge_failures)} answer(s) scored 0, {judge_failures[0]}")
