"""The RL run's metrics rows (`out_dir/metrics.jsonl`): one schema for every row of a run.

Contract:
- `metric_keys(config, reward_terms)`: the keys of every row of a run with `config`, in order
  (the trainer's module docstring says what each figure is). Which keys a run has depends only
  on its config and reward terms, so every row of a run, resumed or not, has the same ones.
- `rollout_figures(batch, version, suites, reward_terms)`: a step's figures that need no update
  (rollouts kept and dropped, flat groups, rewards overall, per suite and per term, advantages
  of the kept rollouts, subagents, response tokens, failures per kind), `version` being the
  policy version that trains on them.
- `metrics_row(keys, step, figures)`: the row of `step`, None for every key without a figure;
  a figure without a key is an `AssertionError` (it would break the one-schema promise).
Means over nothing are None, not 0: a figure not measured is not a figure of zero. It knows
figures, not where they come from; the trainer appends the rows (`train/checkpoints.py`).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from wideseek.train.dev_eval import metric_names
from wideseek.train.rl.batch import StepBatch
from wideseek.train.rl.config import RLConfig
from wideseek.types import Failure


def metric_keys(config: RLConfig, reward_terms: Sequence[str]) -> list[str]:
    """The keys of every metrics row of a run with `config` (module docstring)."""
    dev = [f"dev_{k}" for k in metric_names(config.eval)] if config.eval_every else []
    return [
        "step", "policy_version", "rollouts", "rollouts_kept", "rollouts_dropped", "flat_groups",
        "reward_mean", "reward_std", *(f"reward_{s}" for s in config.suites), *reward_terms,
        "advantage_mean", "advantage_std", "loss", "lr", "grad_norm", "trained_agents",
        "trained_tokens", "entropy", "clip_frac", "dual_clip_frac", "ratio_mean", "approx_kl",
        "early_stopped", "staleness", *(["kl_ref"] if config.kl_coef else []),
        "subagents_per_rollout", "response_tokens", *(f"fail_{f.value}" for f in Failure),
        "rollout_s", "update_s", "eval_s", "started", "guard", *dev,
        *(["resampled_groups", "replaced_groups"] if config.select.resample_flat else []),
    ]  # fmt: skip


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.pstdev(values)


def rollout_figures(
    batch: StepBatch, version: int, suites: Sequence[str], reward_terms: Sequence[str]
) -> dict[str, Any]:
    """The step's figures that need no update: rewards, advantages, rollouts, failures."""
    rollouts = batch.rollouts
    trajectories = [r.trajectory for r in rollouts]
    totals = [r.reward.total for r in rollouts]
    row: dict[str, Any] = {"policy_version": version, "rollouts": len(rollouts)}
    row["rollouts_kept"] = len(batch.kept)
    row["rollouts_dropped"] = len(rollouts) - len(batch.kept)
    row["flat_groups"] = batch.flat_groups / max(batch.groups, 1)
    row["reward_mean"], row["reward_std"] = mean_std(totals)
    for suite in suites:
        row[f"reward_{suite}"] = mean_std([r.reward.total for r in rollouts
                                           if r.suite == suite])[0]  # fmt: skip
    for name in reward_terms:
        row[name] = mean_std([r.reward.values[name] for r in rollouts])[0]
    row["advantage_mean"], row["advantage_std"] = mean_std([r.advantage for r in batch.kept])
    multi = [t for t in trajectories if t.mode == "multi"]
    row["subagents_per_rollout"] = mean_std([len(t.subagents) for t in multi])[0]
    lengths = [turn.usage.completion_tokens for t in trajectories for _, turn in t.iter_turns()]
    row["response_tokens"] = mean_std(lengths)[0]
    for kind in Failure:
        counts = [t.failure_counts().get(kind.value, 0) for t in trajectories]
        row[f"fail_{kind.value}"] = mean_std(counts)[0]
    return row


def metrics_row(keys: Sequence[str], step: int, figures: dict[str, Any]) -> dict[str, Any]:
    """The metrics row of `step`: every key of the run, None where `figures` has none."""
    row = dict.fromkeys(keys) | {"step": step} | figures
    if set(row) != set(keys):  # a figure without a key breaks the one-schema promise
        raise AssertionError(f"metrics keys {sorted(set(row) - set(keys))} unknown")
    return row
