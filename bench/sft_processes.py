"""CPU training tokens/s of the real `wideseek train sft`: one process using every core, or
one process per core (torchrun, gloo, one thread each), measured side by side.

    python bench/sft_processes.py [--config configs/sft-default.yaml] [--repeats 2]
        [--lead 8 --subagent 16 --single 8] [key=value ...]

Each run trains the run file's recipe from its start model on a small seeded sample of its
examples (the role limits; the tokenised examples come from the cache a `train sft --plan` or
an earlier run left) for one epoch of micro-batches of `batch_tokens` tokens, 2 a step, into a
temporary directory, and reads tokens_seen / elapsed_s (the loop's own clock: loading and
tokenising left out) from its last metrics row. Runs alternate (one, many, many, one, ...) so
that drift hits both. On a machine with two cores a matmul of SmolLM2's widths (576) keeps two
threads only partly busy; two processes each run their own micro-batch and meet once a step in
the gradients' all-reduce (the adapter's 9.8M parameters). Run it alone: a second busy process
changes everything.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def train(config: str, overrides: list[str], processes: int, out: Path) -> dict[str, float]:
    env = dict(os.environ)
    args = ["-m", "wideseek", "train", "sft", "--config", config, "--no-progress"]
    args += [*overrides, f"out_dir={out}"]
    if processes == 1:
        cmd = [sys.executable, *args]
    else:  # one thread a process: the processes share the cores out between them
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // processes))
        run = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
        cmd = [sys.executable, *run, *args]
    started = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - started
    rows = [json.loads(line) for line in (out / "sft" / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in rows if "tokens_seen" in r and "eval" not in r][-1]
    return {
        "tokens": last["tokens_seen"],
        "loop_s": last["elapsed_s"],
        "tok_s": last["tokens_seen"] / last["elapsed_s"],
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/sft-default.yaml")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--lead", type=int, default=8)
    parser.add_argument("--subagent", type=int, default=16)
    parser.add_argument("--single", type=int, default=8)
    parser.add_argument("overrides", nargs="*", help="key=value for the run file")
    args = parser.parse_args()
    limits = {"lead": args.lead, "subagent": args.subagent, "single": args.single}
    overrides = [
        f"role_limits={json.dumps(limits)}",
        "train.epochs=1",
        "train.batch_tokens=4096",
        "train.grad_accum=2",
        "train.warmup_steps=1",
        "train.log_every=1",
        "train.save_every=0",
        "train.restart_above_gb=null",
        *args.overrides,
    ]
    order: list[int] = []
    for i in range(args.repeats):  # 1, N, N, 1, 1, N, ...
        order += [1, args.processes][:: -1 if i % 2 else 1]
    figures: dict[int, list[dict[str, float]]] = {1: [], args.processes: []}
    for processes in order:
        with tempfile.TemporaryDirectory() as tmp:
            result = train(args.config, overrides, processes, Path(tmp) / "run")
        figures[processes].append(result)
        print(
            f"{processes} process(es): {result['tokens']:,} tokens in {result['loop_s']:.1f} s "
            f"of training ({result['tok_s']:.0f} tokens/s; {result['wall_s']:.0f} s wall)",
            flush=True,
        )
    best = {p: max(r["tok_s"] for r in rs) for p, rs in figures.items()}
    print(
        f"best tokens/s: 1 process {best[1]:.0f}, {args.processes} processes "
        f"{best[args.processes]:.0f}: {best[args.processes] / best[1]:.2f}x"
    )


if __name__ == "__main__":
    main()
