"""Print the learning curve(s) of SFT runs: probe metrics against training tokens.

    PYTHONPATH=src python bench/sft_curve.py runs/sft-default/sft/metrics.jsonl

Each `{"eval": ...}` row of a metrics.jsonl (written by train_sft) becomes one table row: step,
tokens seen, and every metric of that evaluation (teacher-forced probe, dev evaluation).
Throughput (tokens/s) is taken from the training rows.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table


def curve(path: Path) -> Table:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    evals = [r["eval"] for r in rows if "eval" in r]
    steps = [r for r in rows if "step" in r]
    speed = steps[-1]["tokens_seen"] / steps[-1]["elapsed_s"] if steps else 0.0
    keys = [k for k in (evals[0] if evals else {}) if k not in ("step", "tokens_seen")]
    table = Table(title=f"{path} ({speed:,.0f} tokens/s over the last run segment)")
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
