r"""Score one answer to one WideSearch task, step for step as the official scorer (SCORER.md §3).

Contract: `await score_widesearch(task, response_text, gold, judge, options)` returns a
`WideSearchScore` (item/row precision, recall, F1, success, msg). The order of operations is
upstream's: extract table -> normalise headers -> judge column alignment if the header set
differs -> require exactly the `required` columns -> stringify -> de-duplicate keys on raw
strings -> judge key alignment per key column -> preprocess -> inner join on keys -> cell
scores (key cells 1; one score per metric of every other column, `llm_judge` columns graded
in one batch each) -> counts -> metrics. Success is 1 iff all six P/R/F1 equal 1.0 exactly.
As upstream, a column with two metrics adds two scores per row to the item count and a column
with none adds nothing; a task whose `eval_pipeline` names a column outside `required`, or
lacks a non-key required column, scores 0 (upstream raises a KeyError there). Any failure
along the way (no table, unparsable table, column mismatch, judge error, evaluator error) is
a zero score whose `msg` says why, with `parsed` False; nothing raises.

`ScoreOptions` holds the HEAD quirks a user may want changed; defaults reproduce HEAD:
- `reconcile_int_float=False`: HEAD compares dtypes with `is`, so a gold float column (`19.0`)
  never matches a predicted int column (`19`); True casts the int side to float (`==`, the
  initial commit / EvalScope).
- `dedup_after_normalise=False`: rows are de-duplicated on raw strings only, so pred rows
  that collapse to one key after mapping/normalising all join the same gold row (recall can
  exceed 1); True also de-duplicates both tables on the final keys before the join.
- `table_block="first"`: the first ```` ```markdown ```` block; "last" = last block after
  `</think>` (WideSeek-R1's answer format).
- `now`: dateparser's "today" (frozen by default; None = the real clock, as upstream).
- `lenient_tables=False`: a bare `\r` followed by a blank inside an answer's table makes the
  official scorer's pinned pandas 2.3.1 fail to parse it (SCORER.md §1.5, §4.1), so the task
  scores 0 on every figure; True departs from the official scorer and reads every `\r` as a
  space (details in `table_extract`). Leaderboard numbers use the default.

Knows nothing about HTTP, files or the CLI.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from pydantic import BaseModel, Field

from wideseek.eval.judges import Judge, JudgeError
from wideseek.eval.table_extract import TableBlock, TableParseError, extract_table, norm_column
from wideseek.eval.widesearch_metrics import FROZEN_NOW, cell_metric, preprocess_function
from wideseek.types import Task

GOLD_SUFFIX, PRED_SUFFIX = "_query", "_response"  # upstream's merge suffixes
KEY_METRICS = {"exact_match", "llm_judge"}  # key columns aligned by the judge


class ScoreOptions(BaseModel):
    table_block: TableBlock = "first"
    reconcile_int_float: bool = False
    dedup_after_normalise: bool = False
    now: datetime | None = FROZEN_NOW
    lenient_tables: bool = False


class WideSearchScore(BaseModel):
    item_precision: float = 0.0
    item_recall: float = 0.0
    item_f1: float = 0.0
    row_precision: float = 0.0
    row_recall: float = 0.0
    row_f1: float = 0.0
    success: bool = False
    msg: str = ""
    # The answer's table was read and scored: it parsed, had the required columns (after the
    # judge's alignment) and no step failed. A zero-score answer can be parsed (no row joined);
    # RL's format check is this flag, so the format bonus pays only for what the scorer reads.
    parsed: bool = False
    # Non-key cells of joined rows per metric type: {"number_near": [correct, total], ...};
    # the report's per-metric-type breakdown (which kinds of values a system gets wrong).
    metric_cells: dict[str, list[float]] = Field(default_factory=dict)
    # Rows after de-duplication on the keys (None: the answer was not read that far; the gold's
    # are also given for an answer that was not read, counted on its raw keys); the error
    # analysis compares them (a small model answering 3 rows of 25).
    answer_rows: int | None = None
    gold_rows: int | None = None


class _Zero(Exception):
    """Ends scoring early with an all-zero score and this message (and the gold table's rows,
    once known: the error analysis buckets unread answers by the size they missed)."""

    def __init__(self, msg: str, gold_rows: int | None = None) -> None:
        super().__init__(msg)
        self.gold_rows = gold_rows


def _f1(p: float, r: float) -> float:
    return 0.0 if p + r <= 1e-9 else 2 * p * r / (p + r)


def _present(scores: Sequence[float]) -> list[float]:
    """Scores without NaN (a judge's `null`), which pandas' min and sum skip upstream."""
    return [v for v in scores if not math.isnan(v)]


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def stringify(column: pd.Series) -> pd.Series:
    """`str()` of every value as pandas 2 `astype(str)` does (`nan`, `3.0`, `True`).

    Written out because pandas 3's string dtype keeps missing values missing in `astype(str)`.
    """
    return pd.Series([str(v) for v in column.tolist()], index=column.index, dtype=object)


def _reconcile(gold: pd.Series, pred: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The `==` behaviour: an int64 side is cast to float64 when the other side is float64."""
    is_int, is_float = pd.api.types.is_integer_dtype, pd.api.types.is_float_dtype
    if is_float(gold.dtype) and is_int(pred.dtype):
        pred = pred.astype("float64")
    elif is_int(gold.dtype) and is_float(pred.dtype):
        gold = gold.astype("float64")
    return gold, pred


def _pipeline(task: Task) -> tuple[list[str], list[str], dict[str, Any]]:
    evaluation = task.evaluation or {}
    try:
        keys = list(evaluation["unique_columns"])
        required = list(evaluation["required"])
        pipeline = dict(evaluation["eval_pipeline"])
    except (KeyError, TypeError) as e:
        raise _Zero(f"task {task.id} has no usable evaluation spec ({e})") from e
    stray = [c for c in pipeline if c not in required]
    if stray:
        raise _Zero(f"task {task.id}: eval_pipeline names columns not in required: {stray}")
    unscored = [c for c in required if c not in keys and c not in pipeline]
    if unscored:
        raise _Zero(f"task {task.id}: required columns without an eval_pipeline entry: {unscored}")
    return keys, required, pipeline


async def _align_columns(pred: pd.DataFrame, required: list[str], judge: Judge) -> pd.DataFrame:
    if set(pred.columns) != set(required):
        mapping = await judge.align([str(c) for c in pred.columns], required)
        pred = pred.rename(columns=mapping)
    columns = [str(c) for c in pred.columns]
    missing = [c for c in required if c not in columns]
    extra = [c for c in columns if c not in required]
    if missing or extra:
        raise _Zero(f"columns differ from required: missing {missing}, extra {extra}")
    if len(columns) != len(set(columns)):
        raise _Zero("two answer columns map to the same required column")
    return pred


async def _align_keys(
    pred: pd.DataFrame, gold: pd.DataFrame, keys: list[str], pipeline: dict[str, Any], judge: Judge
) -> pd.DataFrame:
    aligned = [k for k in keys if set(pipeline.get(k, {}).get("metric", [])) & KEY_METRICS]
    maps = await asyncio.gather(*(judge.align(pred[k].tolist(), gold[k].tolist()) for k in aligned))
    pred = pred.copy()
    for key, mapping in zip(aligned, maps, strict=True):
        pred[f"{key}_before_map"] = pred[key]
        pred[key] = pred[key].map(lambda v, m=mapping: m.get(v, v))
    return pred


def _preprocess(df: pd.DataFrame, pipeline: dict[str, Any], now: datetime | None) -> pd.DataFrame:
    df = df.copy()
    for column, spec in pipeline.items():
        for name in spec.get("preprocess", []):
            df[column] = df[column].map(preprocess_function(name, now))
    return df


async def _metric_scores(
    column: str, spec: dict[str, Any], joined: pd.DataFrame, judge: Judge, now: datetime | None
) -> list[tuple[str, list[float]]]:
    """(metric, one score per joined row) for each metric of the column, as upstream's score
    columns `<col>_<metric>`."""
    responses: Sequence[str] = joined[column + PRED_SUFFIX].tolist()
    targets: Sequence[str] = joined[column + GOLD_SUFFIX].tolist()
    out: list[tuple[str, list[float]]] = []
    for name in spec.get("metric", []):
        metric = cell_metric(name, spec.get("criterion"), now)
        if metric is None:
            criterion = str(spec.get("criterion", ""))
            graded = await judge.grade(criterion, responses, targets) if responses else []
        else:
            graded = [metric(r, t) for r, t in zip(responses, targets, strict=True)]
        out.append((name, graded))
    return out


async def _score(
    task: Task, response_text: str | None, gold: pd.DataFrame, judge: Judge, opts: ScoreOptions
) -> WideSearchScore:
    keys, required, pipeline = _pipeline(task)
    if response_text is None:
        raise _Zero("response is None")
    # 1) gold and answer tables with normalised headers
    gold = gold.rename(columns=lambda c: norm_column(str(c)))
    if any(c not in gold.columns for c in required):
        raise _Zero(f"gold table lacks required columns for {task.id}")
    gold = gold[required]
    known = len(gold.drop_duplicates(subset=keys))  # its rows, for an answer not read
    try:
        pred = extract_table(response_text, opts.table_block, opts.lenient_tables)
    except TableParseError as e:
        raise _Zero(str(e), known) from e
    if pred is None:
        raise _Zero("no markdown table in the response", known)
    pred = pred.rename(columns=lambda c: norm_column(str(c)))
    # 2) columns: judge alignment, then exactly `required`
    try:
        pred = (await _align_columns(pred, required, judge))[required]
    except _Zero as e:
        raise _Zero(str(e), known) from e
    # 3) stringify (optionally reconciling int/float first) and de-duplicate on raw keys
    gold_cols, pred_cols = {}, {}
    for column in required:
        g, p = gold[column], pred[column]
        if opts.reconcile_int_float:
            g, p = _reconcile(g, p)
        gold_cols[column], pred_cols[column] = stringify(g), stringify(p)
    gold = pd.DataFrame(gold_cols).drop_duplicates(subset=keys, keep="first")
    pred = pd.DataFrame(pred_cols).drop_duplicates(subset=keys, keep="first")
    n_gold, n_pred = len(gold), len(pred)
    # 4) key alignment by the judge, then preprocessing of every pipeline column
    pred = await _align_keys(pred, gold, keys, pipeline, judge)
    gold = _preprocess(gold, pipeline, opts.now)
    pred = _preprocess(pred, pipeline, opts.now)
    if opts.dedup_after_normalise:
        gold = gold.drop_duplicates(subset=keys, keep="first")
        pred = pred.drop_duplicates(subset=keys, keep="first")
        n_gold, n_pred = len(gold), len(pred)
    # 5) inner join on the keys and cell scores
    joined = gold.merge(pred, on=keys, how="inner", suffixes=(GOLD_SUFFIX, PRED_SUFFIX))
    scored = [c for c in required if c not in keys]
    per_column = await asyncio.gather(
        *(_metric_scores(c, pipeline[c], joined, judge, opts.now) for c in scored)
    )
    score_columns = [cells for metrics in per_column for _, cells in metrics]
    # 6) counts: key cells score 1; a row counts only when every score of it is 1
    n_cols = len(required)
    tp_item = len(joined) * len(keys) + sum(sum(_present(cells)) for cells in score_columns)
    if score_columns:
        rows = zip(*score_columns, strict=True)
        tp_row = sum(min(_present(row), default=1.0) for row in rows)
    else:  # only key scores: every joined row is right
        tp_row = float(len(joined))
    p_item, r_item = _ratio(tp_item, n_pred * n_cols), _ratio(tp_item, n_gold * n_cols)
    p_row, r_row = _ratio(tp_row, n_pred), _ratio(tp_row, n_gold)
    metric_cells: dict[str, list[float]] = {}
    for name, cells in (pair for metrics in per_column for pair in metrics):
        tally = metric_cells.setdefault(name, [0.0, 0.0])
        tally[0] += sum(_present(cells))
        tally[1] += len(cells)
    score = WideSearchScore(
        parsed=True,
        metric_cells=metric_cells,
        item_precision=p_item,
        item_recall=r_item,
        item_f1=_f1(p_item, r_item),
        row_precision=p_row,
        row_recall=r_row,
        row_f1=_f1(p_row, r_row),
        msg=f"{len(joined)} joined rows, {n_pred} answer rows, {n_gold} gold rows",
        answer_rows=n_pred,
        gold_rows=n_gold,
    )
    values = (p_item, r_item, score.item_f1, p_row, r_row, score.row_f1)
    score.success = all(v == 1.0 for v in values)
    return score


async def score_widesearch(
    task: Task,
    response_text: str | None,
    gold: pd.DataFrame,
    judge: Judge,
    options: ScoreOptions | None = None,
) -> WideSearchScore:
    """Score one answer; every failure is a zero score with the reason in `msg`."""
    try:
        return await _score(task, response_text, gold, judge, options or ScoreOptions())
    except _Zero as e:
        return WideSearchScore(msg=str(e), gold_rows=e.gold_rows)
    except JudgeError as e:
        return WideSearchScore(msg=f"judge error: {e}")
    except Exception as e:  # upstream scores any evaluator exception as 0; we say which
        return WideSearchScore(msg=f"evaluator error: {type(e).__name__}: {e}")
