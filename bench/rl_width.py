"""How wide the lead works, step by step, in RL runs: subagents per rollout and rows per answer.

    python bench/rl_width.py RUN_DIR [RUN_DIR ...]

For each run (a `train rl` out_dir), one row per step from its rollouts
(`rollouts/step-K/results.jsonl`, flat-group replacements included) and one per dev
evaluation (`dev-eval/step-K/{wide,deep}/results.jsonl`): the mean number of subagents the
lead started on wide and on deep tasks, the mean rows of the wide answers the scorer read, and
how many wide runs' listers reported as many names as the gold has rows (of those that
delegated a list; from the trajectories, `eval.error_analysis.lister_analysis`). A task is wide
when the scorer gave it an item F1. The first RL arm moved the lead from 4-5
subagents on wide dev tasks to 2 and from 1 to 3 on deep ones while its train reward rose:
this reads that drift off the files a run already writes.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from statistics import fmean

from rich.console import Console
from rich.table import Table

from wideseek.eval.error_analysis import lister_analysis
from wideseek.eval.report import run_trajectories
from wideseek.eval.runner import read_results


def width(run_dirs: list[Path]) -> dict[str, float | str | None]:
    """Mean subagents on wide / deep tasks, mean answer rows of wide ones and the listers of
    the right length, over the runner-written folders `run_dirs`."""
    rows = [row for run_dir in run_dirs for row in read_results(run_dir)]
    wide = [r for r in rows if "item_f1" in r.scores]
    deep = [r for r in rows if "item_f1" not in r.scores]
    answered = [r.scores["answer_rows"] for r in wide if r.scores.get("answer_rows")]
    listers = lister_analysis(t for run_dir in run_dirs for t in run_trajectories(run_dir))

    def mean(values: list[float]) -> float | None:
        return round(fmean(values), 2) if values else None

    return {
        "wide subagents": mean([r.n_subagents for r in wide]),
        "deep subagents": mean([r.n_subagents for r in deep]),
        "wide answer rows": mean(answered),
        "lists right": f"{listers.same}/{listers.listed}" if listers.listed else None,
        "rollouts": len(rows),
    }


def step_of(path: Path) -> int:
    return int(re.sub(r"\D", "", path.name) or 0)


def table(run: Path) -> Table:
    out = Table(title=str(run))
    names = ("what", "step", "wide subagents", "deep subagents", "wide answer rows", "lists right")
    for name in (*names, "n"):
        out.add_column(name, justify="left" if name == "what" else "right")
    for folder in sorted((run / "rollouts").glob("step-*"), key=step_of):
        w = width([folder, *folder.glob("resample-*")])
        out.add_row("rollouts", str(step_of(folder)), *_cells(w))
    for folder in sorted((run / "dev-eval").glob("step-*"), key=step_of):
        w = width([folder / "wide", folder / "deep"])
        out.add_row("dev", str(step_of(folder)), *_cells(w))
    return out


def _cells(w: dict[str, float | str | None]) -> list[str]:
    keys = ("wide subagents", "deep subagents", "wide answer rows", "lists right", "rollouts")
    return ["-" if w[k] is None else str(w[k]) for k in keys]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="train rl out_dir(s)")
    args = parser.parse_args()
    console = Console()
    for run in args.runs:
        console.print(table(run))


if __name__ == "__main__":
    main()
