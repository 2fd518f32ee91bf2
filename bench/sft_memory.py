"""Does a CPU SFT run's memory grow step after step, and does returning freed heap stop it?

    python bench/sft_memory.py [--config configs/sft-default.yaml] [--steps 12] \
        [--batch-tokens 4096] [--save-every 1] [key=value ...]

Runs the real `wideseek train sft` twice on the same run file, from scratch in a temporary
directory, one optimizer step per micro-batch: once as shipped (the trainer hands freed heap
back to the OS after each optimizer step, train/heap.py) and once with that call switched off.
It samples each process's resident memory (/proc, every second) and reads the step it is at from
its metrics.jsonl, stops it after `--steps` steps, and prints per arm the lowest memory of a step
(what the process keeps between steps: growth there is the leak or fragmentation) and the highest
(the step's activations on top), each with its growth per step (least squares over steps 2..N).
Memory, not time, is what it measures, so a busy machine only makes it slower. Linux only (/proc).
The default recipe's demonstrations must exist (scripts/train_default_model.sh's first lines).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from wideseek.io import iter_jsonl

# The child runs the CLI itself; the "off" arm first replaces the heap release with a no-op,
# before the trainer's module imports it.
_CHILD = """
import sys
if sys.argv[1] == "off":
    import wideseek.train.heap as heap
    heap.release_free_heap = lambda: False
from wideseek.cli import main
sys.argv = ["wideseek", *sys.argv[2:]]
main()
"""


def rss_gb(pid: int) -> float | None:
    """Resident memory of `pid` in GB, or None once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1e6
    except OSError:
        return None
    return None


def last_step(metrics: Path) -> int:
    """The newest step metrics.jsonl records (0 before the first)."""
    if not metrics.exists():
        return 0
    # iter_jsonl skips a torn last line: the trainer may be writing it as we read
    steps = [row["step"] for _, row in iter_jsonl(metrics) if "step" in row]
    return steps[-1] if steps else 0


Samples = dict[int, tuple[float, float]]  # step -> (lowest, highest) resident GB during it


def run_arm(arm: str, args: argparse.Namespace, work: Path) -> Samples:
    """The lowest and highest resident memory seen during each step of one arm's run."""
    out = work / arm
    overrides = [
        f"out_dir={out}", f"train.batch_tokens={args.batch_tokens}", "train.grad_accum=1",
        "train.log_every=1", f"train.save_every={args.save_every}", *args.overrides,
    ]  # fmt: skip
    command = [sys.executable, "-c", _CHILD, arm, "train", "sft", "--config", str(args.config)]
    command += ["--no-progress", *overrides]
    log = (work / f"{arm}.log").open("w")
    child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    seen: dict[int, list[float]] = {}
    metrics = out / "sft" / "metrics.jsonl"
    try:
        while child.poll() is None:
            step = last_step(metrics)  # the step now running is step + 1
            if step >= args.steps:
                break
            rss = rss_gb(child.pid)
            if rss is not None:
                seen.setdefault(step + 1, []).append(rss)
            time.sleep(1)
    finally:
        child.kill()
        child.wait()
    if child.returncode not in (0, -9):
        raise SystemExit(f"{arm}: training failed, see {work / arm}.log")
    return {step: (min(gb), max(gb)) for step, gb in seen.items() if step <= args.steps}


def growth_per_step(samples: Samples, which: int) -> float:
    """Least-squares slope over steps of the lowest (0) or highest (1) memory of a step,
    leaving out the first (warm-up) step."""
    steps = sorted(s for s in samples if s > 1)
    if len(steps) < 2:
        return float("nan")
    return statistics.linear_regression(steps, [samples[s][which] for s in steps]).slope


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("configs/sft-default.yaml"))
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps per arm")
    parser.add_argument("--batch-tokens", type=int, default=4096)
    parser.add_argument("--save-every", type=int, default=1, help="as the CPU run did")
    parser.add_argument("overrides", nargs="*", help="more key=value overrides for the run file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sft-memory-") as tmp:
        arms = {arm: run_arm(arm, args, Path(tmp)) for arm in ("off", "on")}
    table = Table(title=f"resident memory of `train sft`, {args.steps} steps (GB)")
    columns = ("heap release", "low, step 2", "low, last", "low / step", "peak", "peak / step")
    for column in columns:
        table.add_column(column, justify="left" if column == "heap release" else "right")
    for arm, samples in arms.items():
        second, last = samples[sorted(samples)[1]], samples[max(samples)]
        table.add_row(arm, f"{second[0]:.2f}", f"{last[0]:.2f}",
                      f"{growth_per_step(samples, 0):+.3f}",
                      f"{max(high for _, high in samples.values()):.2f}",
                      f"{growth_per_step(samples, 1):+.3f}")  # fmt: skip
    console = Console(width=120)
    console.print(table)
    for arm, samples in arms.items():  # every step's low-high, for a plot by hand
        steps = " ".join(f"{s}:{lo:.1f}-{hi:.1f}" for s, (lo, hi) in sorted(samples.items()))
        console.print(f"{arm}: {steps}")


if __name__ == "__main__":
    main()
