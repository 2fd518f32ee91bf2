"""Group-normalised outcome advantages (GRPO), one per rollout, shared by all its agents.

Contract: `group_advantages(rewards)` takes the rewards of the G rollouts of one task and
returns (R_i - mean) / (std + eps) for each, std the unbiased sample std (the published
setup's definition; ../shared/wideseek_r1/RLINF.md 4.2). A group whose rewards are all equal
carries no signal: every advantage is 0 and `is_flat` says so, so a trainer can count such
groups (and resample, or stop: reward hacking shows up as all groups going flat).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

EPS = 1e-6


def is_flat(rewards: Sequence[float]) -> bool:
    return len(rewards) < 2 or max(rewards) - min(rewards) == 0


def group_advantages(rewards: Sequence[float], eps: float = EPS) -> list[float]:
    if is_flat(rewards):
        return [0.0] * len(rewards)
    mean, std = statistics.fmean(rewards), statistics.stdev(rewards)
    return [(r - mean) / (std + eps) for r in rewards]
