"""Print the learning curve(s) of SFT runs: probe metrics against training tokens.

    PYTHONPATH=src python bench/sft_curve.py runs/sft-default/sft/metrics.jsonl

Each `{"eval": ...}` row of a metrics.jsonl (written by train_sft) becomes one table row: step,
tokens seen, and every metric of that evaluation (teacher-forced probe, dev evaluation).
Throughput (tokens/s): tokens over the wall time of every process that ran the training
(a resumed run's `elapsed_s` restarts with each process).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from wideseek.train.shipping import phase_summary


def curve(path: Path) -> Table:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    evals = [r["eval"] for r in rows if "eval" in r]
    phase = phase_summary(path)  # wall time over every process of a resumed run
    speed = phase["tokens"] / phase["wall_s"] if phase["wall_s"] else 0.0
    keys = [k for k in (evals[0] if evals else {}) if k not in ("step", "tokens_seen")]
    table = Table(title=f"{path} ({speed:,.0f} tokens/s over the whole run)")
    for name in ("step", "tokens", *keys):
        table.add_column(name, justify="right")
    for e in evals:
        cells = [f"{e[k]:.3f}" if isinstance(e[k], float) else str(e[k]) for k in keys]
        table.add_row(str(e["step"]), f"{e['tokens_seen']:,}", *cells)
    return table


if __name__ == "__main__":
    console = Console(width=200)
    for arg in sys.argv[1:]:
        console.print(curve(Path(arg)))
