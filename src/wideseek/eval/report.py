"""Aggregate benchmark results into figures, a markdown report and plots.

Definitions (WideSearch's, over N trials per task):
  Avg@N  mean over tasks of the mean over trials       (item F1, row F1, success rate)
  Max@N  mean over tasks of the best trial             (item F1, row F1)
  Pass@N share of tasks with at least one success      (success)

`summarize` works on ResultRows and is pure; `write_report` reads run directories written by
the runner (one run, or a parent directory holding several runs, e.g. a width sweep) and writes
report.md plus PNG plots next to it; given `against` (other runs of the same tasks), it adds
their task-by-task comparison (eval/paired.py).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from statistics import mean
from typing import Any

from wideseek.eval.error_analysis import error_analysis_lines, lister_lines
from wideseek.eval.paired import paired_lines
from wideseek.eval.runner import (
    RUN_INFO,
    TRAJECTORIES,
    ResultRow,
    RunInfo,
    agent_settings,
    engine_backend,
    read_results,
    read_run_info,
    scores_by_task,
)
from wideseek.io import atomic_write_text
from wideseek.types import Trajectory, iter_trajectories

F1_METRICS = ("item_f1", "row_f1")


def summarize(rows: Sequence[ResultRow]) -> dict[str, float]:
    """Avg@N / Max@N of the F1 metrics, success Avg@N / Pass@N, EM/F1 for QA, and costs."""
    out: dict[str, float] = {"tasks": len({r.instance_id for r in rows}), "runs": len(rows)}
    for key in (*F1_METRICS, "em", "f1"):
        by_task = scores_by_task(rows, key)
        if by_task:
            out[f"{key}_avg"] = mean(mean(v) for v in by_task.values())
            out[f"{key}_max"] = mean(max(v) for v in by_task.values())
    success = scores_by_task(rows, "success")
    if success:
        out["success_avg"] = mean(mean(v) for v in success.values())
        out["success_pass"] = mean(float(max(v) > 0) for v in success.values())
    if rows:
        out["subagents_per_run"] = mean(r.n_subagents for r in rows)
        out["turns_per_run"] = mean(r.n_turns for r in rows)
        out["tokens_per_run"] = mean(r.prompt_tokens + r.completion_tokens for r in rows)
        out["completion_tokens_per_run"] = mean(r.completion_tokens for r in rows)
        out["seconds_per_run"] = mean(r.duration_s for r in rows)
        out["errors"] = sum(r.error is not None for r in rows)
    return out


def by_language(rows: Sequence[ResultRow]) -> dict[str, dict[str, float]]:
    groups: dict[str, list[ResultRow]] = defaultdict(list)
    for r in rows:
        groups[r.language].append(r)
    return {lang: summarize(group) for lang, group in sorted(groups.items())}


def failure_totals(rows: Iterable[ResultRow]) -> Counter[str]:
    totals: Counter[str] = Counter()
    for r in rows:
        totals.update(r.failures)
    return totals


def metric_breakdown(rows: Iterable[ResultRow]) -> dict[str, tuple[float, int]]:
    """Cell accuracy per metric type over the joined rows of every answer: {kind: (acc, n)}."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for row in rows:
        for kind, (right, n) in (row.scores.get("metric_cells") or {}).items():
            totals[kind][0] += right
            totals[kind][1] += n
    return {k: (r / n if n else 0.0, int(n)) for k, (r, n) in sorted(totals.items())}


def worst_tasks(rows: Sequence[ResultRow], key: str = "item_f1", n: int = 10) -> list[tuple]:
    by_task = scores_by_task(rows, key)
    ranked = sorted((mean(v), task) for task, v in by_task.items())
    return ranked[:n]


def run_trajectories(run: Path) -> Iterator[Trajectory]:
    """A run directory's trajectories; none when it kept no trajectory file."""
    path = run / TRAJECTORIES
    return iter_trajectories(path) if path.exists() else iter(())


def find_runs(path: str | Path) -> list[Path]:
    """The run directory itself, or every run directory below it (a sweep)."""
    path = Path(path)
    if (path / RUN_INFO).exists():
        return [path]
    runs = sorted(p.parent for p in path.glob("*/" + RUN_INFO))
    if not runs:
        raise FileNotFoundError(
            f"{path}: no run found (expected {RUN_INFO} here or one level down)"
        )
    return runs


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _summary_table(named: dict[str, dict[str, float]], keys: Sequence[str]) -> list[str]:
    present = [k for k in keys if any(k in s for s in named.values())]
    lines = ["| | " + " | ".join(present) + " |", "|---" * (len(present) + 1) + "|"]
    for name, s in named.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(s.get(k, "")) for k in present) + " |")
    return lines


HEADLINE_KEYS = (
    "tasks",
    "runs",
    "item_f1_avg",
    "item_f1_max",
    "row_f1_avg",
    "row_f1_max",
    "success_avg",
    "success_pass",
    "em_avg",
    "f1_avg",
)
COST_KEYS = (
    "subagents_per_run",
    "turns_per_run",
    "tokens_per_run",
    "completion_tokens_per_run",
    "seconds_per_run",
    "errors",
)


def run_settings(run: Path) -> dict[str, Any]:
    """The settings of a run that a paired comparison names when they differ: the suite (split
    and wording: world-wide-test-reworded), mode, trials, world, local engine and agents'
    limits."""
    info = read_run_info(run)
    world, engine = info.extra.get("world"), engine_backend(info)
    settings = {"suite": info.suite, "mode": info.mode, "trials": info.trials}
    settings |= {"world": world[:8]} if isinstance(world, str) else {}
    settings |= {"engine": engine} if engine else {}
    return settings | agent_settings(info)


def against_lines(
    path: str | Path, against: str | Path, names: tuple[str, str] | None = None,
    same_model: bool = False,
) -> list[str]:  # fmt: skip
    """The paired comparison of the runs at `path` (A) with those at `against` (B), named by
    their paths unless `names` are given; `same_model`: one model's two evaluations, whose
    settings differ on purpose (a model card's held-out against template wordings)."""
    runs_a = {r: read_results(r) for r in find_runs(path)}
    runs_b = {r: read_results(r) for r in find_runs(against)}
    settings_a = {r: run_settings(r) for r in runs_a}
    settings_b = {r: run_settings(r) for r in runs_b}
    name_a, name_b = names or (str(path), str(against))
    return paired_lines(
        runs_a, runs_b, name_a, name_b, settings_a, settings_b, same_model=same_model
    )


TrajectoryLines = Callable[[list[Trajectory]], list[str]]


def write_report(
    path: str | Path,
    plots: bool = True,
    against: str | Path | None = None,
    analyses: Sequence[TrajectoryLines] = (),
) -> Path:
    """Write report.md (and plots) for one run or a directory of runs; returns the report path.
    `against`: another run (or directory of runs) on the same tasks, compared task by task.
    `analyses`: more markdown from a run's trajectories, added to the wide error analysis of a
    run with wide answers (a layer above this one knows the world: e.g. the stage attribution,
    runtime/stage_attribution.py)."""
    path = Path(path)
    runs = find_runs(path)
    infos = {r: read_run_info(r) for r in runs}
    results = {r: read_results(r) for r in runs}
    lines = [f"# wideseek report: {path}", ""]
    named = {r.name: summarize(results[r]) for r in runs}
    lines += ["## Summary (Avg@N / Max@N over trials, Pass@N for success)", ""]
    lines += [*_summary_table(named, HEADLINE_KEYS), ""]
    if against is not None:
        lines += [f"## Against {against}, task by task", "", *against_lines(path, against), ""]
    lines += ["## Cost per run", "", *_summary_table(named, COST_KEYS), ""]
    for run in runs:
        info, rows = infos[run], results[run]
        lines += [
            f"## {run.name}: {info.suite}, {info.mode}, {info.profile}, {info.model}, "
            f"N={info.trials}",
            "",
        ]
        langs = by_language(rows)
        if len(langs) > 1:
            lines += ["By language:", "", *_summary_table(langs, HEADLINE_KEYS), ""]
        breakdown = metric_breakdown(rows)
        if breakdown:
            lines += ["Cell accuracy by metric type (non-key cells of matched rows):", ""]
            lines += ["| metric | accuracy | cells |", "|---|---:|---:|"]
            lines += [f"| {k} | {acc:.3f} | {n} |" for k, (acc, n) in breakdown.items()] + [""]
        errors = error_analysis_lines(rows)
        if errors:  # a run with wide answers: its trajectories are read for the listers only then
            trajectories = list(run_trajectories(run))
            errors += lister_lines(trajectories)
            errors += [line for analyse in analyses for line in analyse(trajectories)]
            lines += ["Wide error analysis (item F1 by the gold table's size):", "", *errors]
        failures = failure_totals(rows)
        if failures:
            lines += ["Failure flags (agents flagged, all trials):", ""]
            lines += [f"- {name}: {count}" for name, count in failures.most_common()] + [""]
        worst = worst_tasks(rows)
        if worst:
            lines += ["Worst tasks by item F1 (Avg@N):", ""]
            lines += [f"- {task}: {score:.3f}" for score, task in worst] + [""]
    if plots:
        lines += _plots(path, runs, infos, results)
    out = path / "report.md"
    atomic_write_text(out, "\n".join(lines) + "\n")
    return out


def _plots(
    path: Path,
    runs: list[Path],
    infos: dict[Path, RunInfo],
    results: dict[Path, list[ResultRow]],
) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ["(plots skipped: install wideseek[report] for matplotlib)", ""]
    lines = ["## Plots", ""]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for run in runs:
        by_task = scores_by_task(results[run], "item_f1")
        values = sorted((mean(v) for v in by_task.values()), reverse=True)
        ax.plot(range(len(values)), values, marker=".", label=run.name)
    ax.set_xlabel("task (sorted)")
    ax.set_ylabel("item F1 (Avg@N)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path / "item_f1_per_task.png", dpi=110)
    plt.close(fig)
    lines += ["![item F1 per task](item_f1_per_task.png)", ""]
    sweep = [(infos[r].max_subagents, r) for r in runs if infos[r].max_subagents is not None]
    if len({w for w, _ in sweep}) > 1:
        sweep.sort()
        fig, ax = plt.subplots(figsize=(5, 3.5))
        xs = [w for w, _ in sweep]
        ys = [summarize(results[r]).get("item_f1_avg", 0.0) for _, r in sweep]
        ax.plot(xs, ys, marker="o")
        ax.set_xlabel("subagents per lead call")
        ax.set_ylabel("item F1 (Avg@N)")
        fig.tight_layout()
        fig.savefig(path / "width_sweep.png", dpi=110)
        plt.close(fig)
        lines += ["![item F1 vs width](width_sweep.png)", ""]
    return lines
