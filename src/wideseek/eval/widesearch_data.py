"""Loading the WideSearch benchmark files: task records and gold tables.

Contract:
- `load_widesearch_tasks(path)`: `widesearch.jsonl` -> `Task`s (kind "wide"; `evaluation`
  parsed from its JSON string; `unique_columns`, `required`, `eval_pipeline` checked).
- `load_gold(gold_dir, instance_id, required)`: `<id>.csv` read with pandas defaults as the
  official loader does, headers normalised with `norm_column`, only `required` kept in order.
  Where upstream silently drops a task whose gold lacks a required column, we raise.
- `load_benchmark(data_dir)`: every task of `widesearch.jsonl` with its gold table from
  `widesearch_gold/` (the Hugging Face layout).

Bad files raise `WideSearchDataError` naming the file (and line). Knows nothing about scoring.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from wideseek.errors import DataError
from wideseek.eval.table_extract import norm_column
from wideseek.io import iter_jsonl
from wideseek.types import Task


class WideSearchDataError(DataError):
    """A task file or gold table that cannot be used; the message says what and where."""


def _parse_evaluation(raw: Any, where: str) -> dict[str, Any]:
    try:
        evaluation = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as e:
        raise WideSearchDataError(f"{where}: `evaluation` is not valid JSON ({e.msg})") from e
    if not isinstance(evaluation, dict):
        raise WideSearchDataError(f"{where}: `evaluation` must be an object")
    for field, kind in (("unique_columns", list), ("required", list), ("eval_pipeline", dict)):
        if not isinstance(evaluation.get(field), kind):
            what = f"`evaluation.{field}` missing or not a {kind.__name__}"
            raise WideSearchDataError(f"{where}: {what}")
    return evaluation


def load_widesearch_tasks(path: str | Path) -> list[Task]:
    path = Path(path)
    try:
        records = list(
            iter_jsonl(
                path, torn_tail=False, error=WideSearchDataError, not_json="not a WideSearch record"
            )
        )
    except OSError as e:
        raise WideSearchDataError(f"{path}: cannot read task file ({e})") from e
    tasks: list[Task] = []
    for number, record in records:
        where = f"{path}:{number}"
        try:
            iid, query = record["instance_id"], record["query"]
        except (KeyError, TypeError) as e:
            raise WideSearchDataError(f"{where}: not a WideSearch record ({e})") from e
        tasks.append(
            Task(
                id=str(iid),
                question=str(query),
                kind="wide",
                language=str(record.get("language", "en")),
                evaluation=_parse_evaluation(record.get("evaluation"), where),
            )
        )
    return tasks


def load_gold(
    gold_dir: str | Path, instance_id: str, required: Sequence[str] | None = None
) -> pd.DataFrame:
    path = Path(gold_dir) / f"{instance_id}.csv"
    try:
        gold = pd.read_csv(path)
    except FileNotFoundError as e:
        raise WideSearchDataError(f"{path}: gold table not found") from e
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise WideSearchDataError(f"{path}: cannot read gold table ({e})") from e
    gold.columns = [norm_column(str(c).strip()) for c in gold.columns]
    if required is None:
        return gold
    missing = [c for c in required if c not in gold.columns]
    if missing:
        raise WideSearchDataError(f"{path}: gold table lacks required columns {missing}")
    return gold[list(required)]


def load_benchmark(data_dir: str | Path) -> list[tuple[Task, pd.DataFrame]]:
    data_dir = Path(data_dir)
    tasks = load_widesearch_tasks(data_dir / "widesearch.jsonl")
    gold_dir = data_dir / "widesearch_gold"
    return [(t, load_gold(gold_dir, t.id, (t.evaluation or {}).get("required"))) for t in tasks]
