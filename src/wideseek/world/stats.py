"""Summary figures of a built world: counts, and per suite the distribution of rows, columns
and metrics. Reads only the world's files (never the fact packages); knows nothing of printing."""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass, field

from wideseek.world.store import World
from wideseek.world.wide_tasks import SPLITS


@dataclass
class SuiteStats:
    tasks: int = 0
    languages: Counter = field(default_factory=Counter)
    rows: Counter = field(default_factory=Counter)  # bucket label -> tasks
    columns: Counter = field(default_factory=Counter)  # column count -> tasks
    metrics: Counter = field(default_factory=Counter)  # metric -> columns


ROW_BUCKETS = ((3, 5), (6, 10), (11, 15), (16, 30), (31, 60))


def _bucket(n: int) -> str:
    for lo, hi in ROW_BUCKETS:
        if lo <= n <= hi:
            return f"{lo}-{hi}"
    return f"other ({n})"


def wide_stats(world: World, split: str) -> SuiteStats:
    stats = SuiteStats()
    with world.wide_tasks(split).open(encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            evaluation = json.loads(record["evaluation"])
            with (world.wide_gold_dir(split) / f"{record['instance_id']}.csv").open(
                encoding="utf-8"
            ) as g:
                n_rows = sum(1 for _ in csv.reader(g)) - 1
            stats.tasks += 1
            stats.languages[record["language"]] += 1
            stats.rows[_bucket(n_rows)] += 1
            stats.columns[len(evaluation["required"])] += 1
            for pipe in evaluation["eval_pipeline"].values():
                stats.metrics.update(pipe["metric"])
    return stats


def deep_stats(world: World, split: str) -> Counter:
    """(language, hops) -> tasks."""
    hops: Counter = Counter()
    with (
        world.deep_tasks(split).open(encoding="utf-8") as f,
        world.deep_meta(split).open(encoding="utf-8") as m,
    ):
        for line, meta_line in zip(f, m, strict=True):
            hops[(json.loads(line)["language"], json.loads(meta_line)["hops"])] += 1
    return hops


def all_wide_stats(world: World) -> dict[str, SuiteStats]:
    return {split: wide_stats(world, split) for split in SPLITS}
