"""Two runs on the same tasks, compared task by task: is the difference more than noise?

Twenty tasks scored greedily are a small sample; two models' means can differ by 0.03 item F1
on noise alone. Paired by task, the question is sharper: on how many tasks is A better, worse,
equal, and what does a bootstrap over the tasks say about the mean difference?

`paired_difference(rows_a, rows_b, metric)` pairs ResultRows by task (a task's score is its mean
over trials), keeps the tasks both runs scored, and returns the means, the counts and a 95%
percentile bootstrap interval of the mean difference A - B (tasks resampled with replacement,
a fixed seed). `paired_lines(runs_a, runs_b)` renders one markdown row per pair of runs (wide
with wide, deep with deep, by directory name) for `wideseek report --against`, and under the
table what the pairing cannot see: tasks scored in one run only (left out), and settings in
which the two runs differ besides the model (`settings_a` / `settings_b`, e.g. the split, the
wording, the agents' limits, the world: a difference there is not the model's). Pure: rows in,
figures out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import mean
from typing import Any

import numpy as np

from wideseek.eval.runner import ResultRow, scores_by_task

TASK_METRICS = ("item_f1", "em")  # a wide run's headline, a deep run's


@dataclass(frozen=True)
class PairedDifference:
    metric: str
    tasks: int  # scored in both runs
    mean_a: float
    mean_b: float
    better: int  # tasks where A scored higher
    worse: int
    equal: int
    low: float  # 95% bootstrap interval of mean(A - B)
    high: float
    only_one: int  # tasks scored in one run only (left out)

    @property
    def difference(self) -> float:
        return self.mean_a - self.mean_b


def task_scores(rows: Sequence[ResultRow], metric: str) -> dict[str, float]:
    """Each task's mean `metric` over its trials (rows without the metric are skipped)."""
    return {task: mean(values) for task, values in scores_by_task(rows, metric).items()}


def run_metric(rows: Sequence[ResultRow]) -> str | None:
    """item_f1 for a wide run, em for a deep one; None when the rows carry neither."""
    return next((m for m in TASK_METRICS if any(m in r.scores for r in rows)), None)


def paired_difference(
    rows_a: Sequence[ResultRow],
    rows_b: Sequence[ResultRow],
    metric: str,
    resamples: int = 10_000,
    seed: int = 0,
) -> PairedDifference:
    a, b = task_scores(rows_a, metric), task_scores(rows_b, metric)
    shared = sorted(a.keys() & b.keys())
    if not shared:
        raise ValueError(f"the two runs share no task scored by {metric}")
    diffs = np.array([a[t] - b[t] for t in shared])
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, len(diffs), (resamples, len(diffs)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return PairedDifference(
        metric=metric,
        tasks=len(shared),
        mean_a=mean(a[t] for t in shared),
        mean_b=mean(b[t] for t in shared),
        better=int((diffs > 0).sum()),
        worse=int((diffs < 0).sum()),
        equal=int((diffs == 0).sum()),
        low=float(low),
        high=float(high),
        only_one=len(a.keys() ^ b.keys()),
    )


def paired_lines(
    runs_a: Mapping[Path, Sequence[ResultRow]],
    runs_b: Mapping[Path, Sequence[ResultRow]],
    name_a: str,
    name_b: str,
    settings_a: Mapping[Path, Mapping[str, Any]] | None = None,
    settings_b: Mapping[Path, Mapping[str, Any]] | None = None,
    *,
    same_model: bool = False,
) -> list[str]:
    """Markdown: one row per pair of runs with the same directory name (a lone run in each
    pairs with the other's lone run), then a line per pair that left tasks out or whose
    settings differ (a warning, unless `same_model`: then the difference is what is
    compared)."""
    pairs = [(a, b) for a in runs_a for b in runs_b if a.name == b.name]
    if not pairs and len(runs_a) == len(runs_b) == 1:
        pairs = [(next(iter(runs_a)), next(iter(runs_b)))]
    lines = [
        f"A = {name_a}, B = {name_b}; tasks paired by id, a task's score its mean over trials;",
        "the interval: 95% bootstrap over tasks of mean(A - B).",
        "",
        "| run | metric | tasks | A | B | A - B | 95% interval | A better / worse / equal |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    notes = []
    for a, b in pairs:
        metric = run_metric(runs_a[a])
        if metric is None:
            continue
        d = paired_difference(runs_a[a], runs_b[b], metric)
        lines.append(
            f"| {a.name} | {metric} | {d.tasks} | {d.mean_a:.3f} | {d.mean_b:.3f} | "
            f"{d.difference:+.3f} | [{d.low:+.3f}, {d.high:+.3f}] | "
            f"{d.better} / {d.worse} / {d.equal} |"
        )
        if d.only_one:
            notes.append(f"- {a.name}: {d.only_one} tasks scored in one run only, left out.")
        differ = settings_differ((settings_a or {}).get(a, {}), (settings_b or {}).get(b, {}))
        if differ:
            what = (
                "A and B differ in"
                if same_model
                else "settings differ (A vs B), so not only the model:"
            )
            notes.append(f"- {a.name}: {what} {differ}.")
    if len(lines) == 5:
        raise ValueError(f"{name_a} and {name_b} hold no runs of the same name to pair")
    return [*lines, *([""] if notes else []), *notes]


def settings_differ(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    """'lead_response_tokens 768 vs 256, world a0fe5765 vs c463790a' for the settings both
    record with different values ('' when none)."""
    return ", ".join(f"{k} {a[k]} vs {b[k]}" for k in a if k in b and a[k] != b[k])
