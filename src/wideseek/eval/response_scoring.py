"""Score a file of answers to WideSearch tasks, and summarise the scores.

Contract:
- `read_responses(path)`: JSON lines with `instance_id`, optional `trial` (default 0) and
  `response` (the raw final answer text; null is allowed and scores 0).
- `await score_responses(answers, tasks, gold_dir, judge, options)`: one `ScoredAnswer` per
  answer, in input order; gold tables are read once per task. Unknown instance ids are
  refused before any scoring starts. Tables are read as the official scorer reads them;
  `options.lenient_tables` departs from it (bare carriage returns in cells read as spaces).
- `summarise(scored, tasks)`: the benchmark's figures (Avg@N / Max@N of item and row F1,
  success Avg@N / Pass@N), overall and per language, computed by the same `eval.report.summarize`
  that `wideseek eval` reports with, so a file of answers and a run score alike.
- `write_scores(path, scored)`: JSON lines, written atomically (temp file + rename).

Bad files raise `WideSearchDataError` naming the file and line. Knows nothing about the CLI.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ValidationError

from wideseek.eval.judges import Judge
from wideseek.eval.report import by_language, summarize
from wideseek.eval.runner import ResultRow
from wideseek.eval.widesearch_data import WideSearchDataError, load_gold
from wideseek.eval.widesearch_scorer import ScoreOptions, WideSearchScore, score_widesearch
from wideseek.types import Task

# WideSearchScore fields of our own, left out of the official output shape
_NOT_OFFICIAL = {"metric_cells", "parsed", "answer_rows", "gold_rows"}


class AnswerRecord(BaseModel):
    instance_id: str
    trial: int = 0
    response: str | None


class ScoredAnswer(WideSearchScore):
    instance_id: str
    trial: int = 0


def read_responses(path: str | Path) -> list[AnswerRecord]:
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise WideSearchDataError(f"{path}: cannot read responses ({e})") from e
    answers: list[AnswerRecord] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            answers.append(AnswerRecord.model_validate_json(line))
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "line"
            raise WideSearchDataError(f"{path}:{number}: {where}: {err['msg']}") from e
    return answers


async def score_responses(
    answers: Sequence[AnswerRecord],
    tasks: Sequence[Task],
    gold_dir: str | Path,
    judge: Judge,
    options: ScoreOptions | None = None,
    concurrency: int = 8,
) -> list[ScoredAnswer]:
    by_id = {t.id: t for t in tasks}
    unknown = sorted({a.instance_id for a in answers} - by_id.keys())
    if unknown:
        shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise WideSearchDataError(f"{len(unknown)} answer(s) name unknown instance ids: {shown}")
    gold: dict[str, pd.DataFrame] = {}
    for iid in dict.fromkeys(a.instance_id for a in answers):
        required = (by_id[iid].evaluation or {}).get("required")
        gold[iid] = load_gold(gold_dir, iid, required)
    slots = asyncio.Semaphore(concurrency)  # bounds judge calls in flight across answers

    async def one(answer: AnswerRecord) -> ScoredAnswer:
        async with slots:
            task = by_id[answer.instance_id]
            score = await score_widesearch(
                task, answer.response, gold[answer.instance_id], judge, options
            )
        return ScoredAnswer(instance_id=answer.instance_id, trial=answer.trial, **dict(score))

    return list(await asyncio.gather(*(one(a) for a in answers)))


def result_rows(scored: Sequence[ScoredAnswer], tasks: Sequence[Task]) -> list[ResultRow]:
    """The scored answers as benchmark result rows (no costs: only answers were given)."""
    language = {t.id: t.language for t in tasks}
    return [
        ResultRow(
            instance_id=s.instance_id,
            trial=s.trial,
            language=language[s.instance_id],
            scores={"item_f1": s.item_f1, "row_f1": s.row_f1, "success": s.success},
        )
        for s in scored
    ]


def summarise(scored: Sequence[ScoredAnswer], tasks: Sequence[Task]) -> dict[str, dict[str, float]]:
    """{"all": figures, "<language>": figures, ...}: `summarize` over every answer, then per
    language in sorted order."""
    rows = result_rows(scored, tasks)
    return {"all": summarize(rows), **by_language(rows)}


def write_scores(path: str | Path, scored: Sequence[ScoredAnswer]) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for s in scored:
            fields = s.model_dump(exclude=_NOT_OFFICIAL)  # the documented fields
            line = {
                "instance_id": fields.pop("instance_id"),
                "trial": fields.pop("trial"),
                **fields,
            }
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    tmp.replace(path)
