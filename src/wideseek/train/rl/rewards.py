"""One scalar reward per rollout, shaped as published, with its terms kept for the metrics.

Contract: `rollout_reward(trajectory, scores, shaping)` returns a `Reward`: the outcome (item F1
of the final table for wide tasks, EM for QA, from the project's scorer), plus a format bonus
when the answer is well formed, plus an access bonus when any agent read a page, minus a
length penalty that grows linearly from `length_limit` to `max_length_limit` tokens of the
longest single generation. A malformed answer, or a lead (single agent) that ended on a hard
failure (turn limit, context overflow, engine error), scores 0 with no bonus: a reward must
never pay for the format alone when the task was not done (../shared/wideseek_r1/RLINF.md 3.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from wideseek.types import Trajectory

ACCESS_TOOL = "access"


class RewardShaping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format_bonus: float = Field(0.1, ge=0, description="added when the answer is well formed")
    access_bonus: float = Field(0.05, ge=0, description="added when any agent accessed a page")
    length_penalty: float = Field(0.1, ge=0, description="at most this much is taken off")
    length_limit: int = Field(3000, ge=1, description="no penalty up to this many tokens")
    max_length_limit: int = Field(5000, ge=2, description="the full penalty from here")
    qa_metric: str = Field("em", pattern="^(em|f1)$", description="a QA task's outcome")


@dataclass
class Reward:
    total: float
    outcome: float
    format_ok: bool
    accessed: bool
    length_penalty: float
    lead_failed: bool

    def terms(self) -> dict[str, float]:
        return {
            "reward": self.total,
            "outcome": self.outcome,
            "format_ok": float(self.format_ok),
            "accessed": float(self.accessed),
            "length_penalty": self.length_penalty,
            "lead_failed": float(self.lead_failed),
        }


def answer_well_formed(trajectory: Trajectory) -> bool:
    """A wide answer holds a markdown table; a QA answer a \\boxed{} one."""
    from wideseek.eval.table_extract import find_table_text

    answer = trajectory.final_answer or ""
    if trajectory.task.kind == "wide":
        return find_table_text(answer) is not None
    return "\\boxed{" in answer


def outcome_of(trajectory: Trajectory, scores: dict[str, Any], shaping: RewardShaping) -> float:
    key = "item_f1" if trajectory.task.kind == "wide" else shaping.qa_metric
    return float(scores.get(key) or 0.0)


def rollout_reward(
    trajectory: Trajectory, scores: dict[str, Any], shaping: RewardShaping
) -> Reward:
    lead = trajectory.lead
    lead_failed = trajectory.error is not None or lead is None or not lead.ok
    format_ok = answer_well_formed(trajectory)
    accessed = any(
        call.name == ACCESS_TOOL for _, turn in trajectory.iter_turns() for call in turn.tool_calls
    )
    longest = max((turn.usage.completion_tokens for _, turn in trajectory.iter_turns()), default=0)
    span = shaping.max_length_limit - shaping.length_limit
    over = min(max((longest - shaping.length_limit) / max(span, 1), 0.0), 1.0)
    penalty = shaping.length_penalty * over
    outcome = outcome_of(trajectory, scores, shaping)
    if lead_failed or not format_ok:
        total = 0.0
    else:
        bonus = shaping.format_bonus + (shaping.access_bonus if accessed else 0.0)
        total = outcome + bonus - penalty
    return Reward(total, outcome, format_ok, accessed, penalty, lead_failed)
