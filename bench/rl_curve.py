"""Print (and optionally plot) the learning curve of RL runs from their metrics.jsonl.

    python bench/rl_curve.py runs/rl-cpu/metrics.jsonl [more.jsonl ...] [--plot curve.png]
    python bench/rl_curve.py --compare multi=RUN/multi-s1/metrics.jsonl multi=... single=...

One table row per step (train_rl writes one metrics row per step, every row with the same
keys; a step-0 row holds the start model's dev figures): the policy version that sampled the
step, reward mean ± std, outcome, answers the scorer read, rollouts kept / dropped, trained
tokens, loss, KL to the sampler, entropy, and the dev figures where the step was evaluated.
`--plot` draws reward, outcome and the dev headlines against the step (matplotlib, the
`report` extra), one line per run file.

`--compare LABEL=metrics.jsonl ...` (one per seed, a label per setting, e.g. multi / single)
prints, per label and dev headline, the figure before RL (the first evaluated row: the start
model) and after (the last evaluated row) as mean ± std over the label's runs, the gain, and
whether the mean gain exceeds the seed-to-seed spread (the std of the gains over seeds), as
issue 27's learning demonstration asks.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

# metrics key -> column title
COLUMNS = {"outcome": "outcome", "format_ok": "parsed", "rollouts_kept": "kept",
           "rollouts_dropped": "dropped", "trained_tokens": "tokens", "loss": "loss",
           "approx_kl": "kl", "entropy": "entropy", "dev_wide_item_f1": "dev item F1",
           "dev_deep_em": "dev EM", "dev_answer_validity": "dev parsed"}  # fmt: skip
DEV_HEADLINES = ["dev_wide_item_f1", "dev_deep_em"]


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-2 and value else f"{value:.3f}"
    return str(value)


def curve(path: Path) -> Table:
    rows = read_rows(path)
    shown = [k for k in COLUMNS if rows and k in rows[0]]  # dev columns: runs that evaluate
    table = Table(title=str(path))
    for name in ("step", "policy", "reward", *(COLUMNS[k] for k in shown)):
        table.add_column(name, justify="right", no_wrap=True)
    for r in rows:
        mean, std = r["reward_mean"], r["reward_std"]
        reward = "" if mean is None else f"{mean:.3f}±{std:.3f}"
        cells = [cell(r[k]) for k in shown]
        table.add_row(str(r["step"]), cell(r["policy_version"]), reward, *cells)
    guard = next((r["guard"] for r in rows if r.get("guard")), None)
    if guard:
        table.caption = f"stopped: {guard}"
    return table


def before_after(path: Path) -> dict[str, tuple[float, float]]:
    """headline -> (first evaluated value, last evaluated value) of one run."""
    rows = read_rows(path)
    out = {}
    for key in DEV_HEADLINES:
        values = [r[key] for r in rows if r.get(key) is not None]
        if values:
            out[key] = (values[0], values[-1])
    return out


def mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
    return mean, var**0.5


def compare(runs: list[tuple[str, Path]]) -> Table:
    by_label: dict[str, list[dict[str, tuple[float, float]]]] = {}
    for label, path in runs:
        by_label.setdefault(label, []).append(before_after(path))
    table = Table(title="dev before vs after RL (mean ± std over seeds)")
    for name in ("setting", "seeds", "headline", "before", "after", "gain", "gain > spread"):
        table.add_column(name, justify="right", no_wrap=True)
    for label, results in by_label.items():
        for key in DEV_HEADLINES:
            pairs = [r[key] for r in results if key in r]
            if not pairs:
                continue
            b, a = mean_std([p[0] for p in pairs]), mean_std([p[1] for p in pairs])
            g = mean_std([p[1] - p[0] for p in pairs])
            verdict = "yes" if g[0] > g[1] and len(pairs) > 1 else "no" if len(pairs) > 1 else "-"
            table.add_row(
                label, str(len(pairs)), key, f"{b[0]:.3f} ± {b[1]:.3f}",
                f"{a[0]:.3f} ± {a[1]:.3f}", f"{g[0]:+.3f} ± {g[1]:.3f}", verdict,
            )  # fmt: skip
    return table


def plot(paths: list[Path], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["reward_mean", "outcome", *DEV_HEADLINES]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2))
    for path in paths:
        rows = read_rows(path)
        for ax, key in zip(axes, keys, strict=True):
            points = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=path.parent.name)
    for ax, key in zip(axes, keys, strict=True):
        ax.set_title(key)
        ax.set_xlabel("step")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("metrics", nargs="*", type=Path, help="metrics.jsonl of train_rl runs")
    parser.add_argument(
        "--compare", nargs="+", default=[], metavar="LABEL=FILE", help="runs to compare by label"
    )
    parser.add_argument("--plot", type=Path, help="write a PNG of the curves here")
    args = parser.parse_args()
    console = Console(width=220)
    labelled = [(spec.partition("=")[0], Path(spec.partition("=")[2])) for spec in args.compare]
    paths = [*args.metrics, *(path for _, path in labelled)]
    for metrics in paths:
        console.print(curve(metrics))
    if labelled:
        console.print(compare(labelled))
    if args.plot:
        plot(paths, args.plot)
        console.print(f"plot: {args.plot}")
