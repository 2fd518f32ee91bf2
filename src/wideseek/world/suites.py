"""Read a world's task files as `wideseek.types.Task` objects (record + planning metadata).

Contract: `wide_tasks(world, split)` and `deep_tasks(world, split)` yield Tasks in file order
(`suite_tasks(world, "wide"|"deep", split)` lists either):
wide ones with the parsed WideSearch `evaluation` and the gold CSV path in `metadata["gold"]`,
QA ones with `golden_answers`; the `.meta.jsonl` planning record of each task (list pages, which
page holds which column, hops) is merged into `metadata`. Gold tables are not read here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from wideseek.types import Task
from wideseek.world.build import WorldError
from wideseek.world.store import World


def _paired(tasks: Path, meta: Path) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    with tasks.open(encoding="utf-8") as t, meta.open(encoding="utf-8") as m:
        for n, (line, meta_line) in enumerate(zip(t, m, strict=True), 1):
            try:
                yield json.loads(line), json.loads(meta_line)
            except json.JSONDecodeError as e:
                raise WorldError(f"{tasks}:{n}: not valid JSON ({e.msg})") from e


def wide_tasks(world: World, split: str) -> Iterator[Task]:
    gold_dir = world.wide_gold_dir(split)
    for record, meta in _paired(world.wide_tasks(split), world.wide_meta(split)):
        iid = record["instance_id"]
        yield Task(
            id=iid,
            question=record["query"],
            kind="wide",
            language=record["language"],
            evaluation=json.loads(record["evaluation"]),
            metadata={**meta, "gold": str(gold_dir / f"{iid}.csv")},
        )


def deep_tasks(world: World, split: str) -> Iterator[Task]:
    for record, meta in _paired(world.deep_tasks(split), world.deep_meta(split)):
        yield Task(
            id=record["id"],
            question=record["question"],
            kind="qa",
            language=record["language"],
            golden_answers=record["golden_answers"],
            metadata=meta,
        )


Suite = Literal["wide", "deep"]
Split = Literal["train", "dev", "test"]
SUITES: tuple[Suite, ...] = ("wide", "deep")
# The figures each suite is judged by (means over tasks; `eval.report.summarize` names them
# `<metric>_avg`).
SUITE_METRICS: dict[str, tuple[str, ...]] = {
    "wide": ("item_f1", "row_f1", "success"),
    "deep": ("em", "f1"),
}


def suite_tasks(world: World, suite: str, split: str) -> list[Task]:
    """Every task of a suite's split, in file order."""
    if suite not in SUITES:
        raise WorldError(f"unknown suite {suite!r} (known: {', '.join(SUITES)})")
    return list((wide_tasks if suite == "wide" else deep_tasks)(world, split))
