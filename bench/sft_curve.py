"""Print the learning curve(s) of SFT runs: evaluations, or the loss, against training tokens.

    python bench/sft_curve.py runs/sft-default/sft/metrics.jsonl [--points 12]

Each `{"eval": ...}` row of a metrics.jsonl (written by train_sft) becomes one table row: step,
tokens seen, and every metric of that evaluation (teacher-forced probe, dev evaluation). A run
without evaluations shows its training loss instead, at `--points` evenly spaced steps. Above
the table: tokens over the wall time of every process that ran the training (a resumed run's
`elapsed_s` restarts with each process, train/shipping.training_seconds).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from wideseek.io import iter_jsonl
from wideseek.train.shipping import phase_summary


def summary(path: Path) -> str:
    phase = phase_summary(path)
    hours = phase.wall_s / 3600
    speed = phase.tokens / phase.wall_s if phase.wall_s else 0.0
    return (f"{path}: {phase.steps} steps, {phase.tokens:,} tokens in {hours:.2f} h of "
            f"wall time over all its processes = {speed:,.0f} tokens/s")  # fmt: skip


def curve(path: Path, points: int) -> Table:
    rows = [row for _, row in iter_jsonl(path)]
    evals = [r["eval"] for r in rows if "eval" in r]
    if not evals:  # the loss of every logged step, thinned out to `points` rows
        steps = [r for r in rows if "loss" in r]
        every = max(1, len(steps) // points)
        evals = steps[every - 1 :: every]
    # elapsed_s restarts with each process of a resumed run: the summary line has the time
    shown = ("step", "tokens_seen", "elapsed_s")
    keys = [k for k in (evals[0] if evals else {}) if k not in shown]
    table = Table()
    for name in ("step", "tokens", *keys):
        table.add_column(name, justify="right")
    for e in evals:
        cells = [f"{e[k]:.4g}" if isinstance(e[k], float) else str(e[k]) for k in keys]
        table.add_row(str(e["step"]), f"{e['tokens_seen']:,}", *cells)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metrics", nargs="+", type=Path, help="an SFT run's metrics.jsonl")
    parser.add_argument("--points", type=int, default=12, help="loss rows of a run without evals")
    args = parser.parse_args()
    console = Console(width=200)
    for path in args.metrics:
        console.print(summary(path))
        console.print(curve(path, args.points))


if __name__ == "__main__":
    main()
