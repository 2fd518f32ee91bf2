"""The RL run's collapse guards, and the rollback to the last good checkpoint when one trips.

Contract:
- `CollapseGuards(outcome_window)` counts, per guard (`config.Guards`: mean reward, mean outcome
  over the last `outcome_window` steps, subagents per multi-agent rollout, flat groups, the
  trained tokens' entropy against the run's first measured step, malformed calls per rollout),
  the steps in a row it has tripped. `check(row, guards, mode)` reads one metrics row, updates the
  counts and returns why the run must stop (the first guard tripping `patience` steps in a
  row), or None; `healthy()`: no guard is tripping now (a checkpoint saved now is *good*).
  `tripped`, `outcomes` and `start_entropy` are what a checkpoint's trainer state keeps;
  `restore(state)` reads them back.
- `roll_back(out_dir, step, why, last_good, procs)`, on every process: the main one records
  the collapse in `out_dir/collapse.json` and puts checkpoint `last_good`'s model in
  `out_dir/final`; all raise the same `CollapseError` line.
- `undo_collapse(out_dir)` (the main process, before resuming): after a collapse, deletes the
  checkpoints after the last good one and the marker, so the next run (with other settings)
  resumes from the last good weights, not from the collapsed ones.
Every process checks the same row, so every process reaches the same verdict and stops at the
same step. It knows rows, counters and checkpoint folders, not how a step is trained.
"""

from __future__ import annotations

import json
import shutil
import statistics
from collections import defaultdict, deque
from pathlib import Path
from typing import Any, NoReturn

from wideseek.errors import WideseekError
from wideseek.io import atomic_write_text
from wideseek.train import checkpoints as ckpt
from wideseek.train.rl.config import Guards
from wideseek.train.rl.notes import note
from wideseek.train.rl.processes import LearnerProcesses
from wideseek.types import Failure

COLLAPSE = "collapse.json"


class CollapseError(WideseekError, RuntimeError):
    """A collapse guard tripped: training stopped at the last good checkpoint."""


class CollapseGuards:
    def __init__(self, outcome_window: int) -> None:
        self.tripped: dict[str, int] = defaultdict(int)
        self.outcomes: deque[float] = deque(maxlen=outcome_window)
        self.start_entropy: float | None = None  # the first step that trained any token

    def restore(self, state: dict[str, Any]) -> None:
        """The counts a checkpoint's trainer state recorded."""
        self.tripped = defaultdict(int, state.get("tripped", {}))
        self.outcomes.extend(state.get("outcomes", []))
        self.start_entropy = state.get("start_entropy")

    def healthy(self) -> bool:
        """No guard is tripping: a checkpoint saved now is a good one."""
        return not any(self.tripped.values())

    def check(self, row: dict[str, Any], g: Guards, mode: str) -> str | None:
        """Why the run must stop (a guard tripped `patience` steps in a row), or None."""
        reward, flat = row["reward_mean"], row["flat_groups"]
        subagents = row["subagents_per_rollout"] or 0.0
        self.outcomes.append(row["outcome"])
        outcome = statistics.fmean(self.outcomes)
        entropy, start = row.get("entropy"), self.start_entropy
        if start is None and entropy:
            self.start_entropy = start = entropy
        rise = entropy / start - 1 if entropy and start else 0.0
        malformed = row.get(f"fail_{Failure.MALFORMED_CALL.value}") or 0.0
        checks = {
            "reward": (g.min_reward is not None and reward <= g.min_reward,
                       f"mean reward {reward:.3f} <= {g.min_reward}"),
            "outcome": (g.min_outcome is not None and outcome <= g.min_outcome,
                        f"mean outcome {outcome:.3f} over the last {len(self.outcomes)} steps "
                        f"<= {g.min_outcome}"),
            "subagents": (g.min_subagents is not None and mode == "multi"
                          and subagents <= g.min_subagents,
                          f"subagents per rollout {subagents:.2f} <= {g.min_subagents}"),
            "flat": (g.max_flat_groups is not None and flat >= g.max_flat_groups,
                     f"{flat:.0%} of groups all-equal (no learning signal)"),
            "entropy": (g.max_entropy_rise is not None and rise >= g.max_entropy_rise,
                        f"entropy {entropy or 0:.4f}, {rise:+.0%} on the first step's "
                        f"{start or 0:.4f}"),
            "malformed": (g.max_malformed is not None and malformed >= g.max_malformed,
                          f"malformed calls per rollout {malformed:.2f} >= {g.max_malformed}"),
        }  # fmt: skip
        why = None
        for name, (tripped, text) in checks.items():
            self.tripped[name] = self.tripped[name] + 1 if tripped else 0
            if self.tripped[name] >= g.patience and why is None:
                why = f"{text} for {self.tripped[name]} steps"
        return why


def roll_back(
    out: Path, step: int, why: str, last_good: int | None, procs: LearnerProcesses
) -> NoReturn:
    """Every process: the main one records the collapse and puts the last good checkpoint's
    model in final/; all stop with the same line."""
    final = out / ckpt.FINAL
    collapse = {"step": step, "why": why, "last_good": last_good}
    if procs.main:
        atomic_write_text(out / COLLAPSE, json.dumps(collapse))
    again = "change the settings (a lower lr, other tasks) and run again"
    if last_good is None:
        procs.wait()
        raise CollapseError(
            f"step {step}: {why}; no good checkpoint to roll back to ({again}: it starts over)"
        )
    good = ckpt.checkpoint_dir(out, last_good)
    if procs.main:
        state = ckpt.read_state(good)
        ckpt.write_final(
            out, lambda tmp: shutil.copytree(good / ckpt.MODEL, tmp, dirs_exist_ok=True), state
        )
    procs.wait()
    raise CollapseError(
        f"step {step}: {why}; stopped, rolled back to checkpoint-{last_good} "
        f"({final}; {again}: it resumes from there)"
    )


def undo_collapse(out: Path) -> None:
    """After a collapse: delete the checkpoints after the last good one, so the run resumes
    from it (`collapse.json` says which)."""
    marker = out / COLLAPSE
    if not marker.exists():
        return
    info = json.loads(marker.read_text())
    good = info.get("last_good")
    for path in ckpt.checkpoints(out):
        if good is None or ckpt.checkpoint_step(path) > good:
            shutil.rmtree(path)
    where = f"checkpoint-{good}" if good is not None else "the start model"
    note(f"the run collapsed at step {info['step']} ({info['why']}); resuming from {where}")
    marker.unlink()
