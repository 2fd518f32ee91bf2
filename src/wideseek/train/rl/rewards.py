"""One scalar reward per rollout: weighted `(task, trajectory) -> float` terms behind gates.

Contract:
- A term is any `RewardFn = (task, trajectory) -> float`; it reads the trajectory's `scores`,
  which the suite runner filled with the project's own scorer (`eval.task_scoring`), so the
  reward judges an answer exactly as evaluation does. The terms here: `outcome` (item F1 of the
  final table for wide tasks, EM or F1 for QA), `answer_parsed` (1 when the scorer read the
  answer: a table that parsed with the required columns, or a complete non-empty `\\boxed{}`;
  an empty fence or a bare `\\boxed{` is 0), `accessed` (1 when any agent read a page),
  `over_length(limit, max_limit)` (0 → 1 as the longest single generation grows from `limit`
  to `max_limit` tokens) and `lead_finished` (1 unless the lead or single agent ended on a
  hard failure: turn limit, context overflow, engine error, stuck, or the run broke).
- `CompositeReward(outcome, shaping, gates, shaping_needs_outcome)` adds them up:
  total = Σ weight · term over the outcome and the shaping terms, but 0 unless every gate term
  is > 0; with `shaping_needs_outcome` the shaping terms count only when the outcome is > 0,
  so a rollout that got nothing right earns no bonus at all. `score()` keeps every term's
  value for the metrics.
- `build_reward(RewardShaping)` is the published shaping (../shared/wideseek_r1/RLINF.md 3.3):
  outcome + 0.1 · parsed + 0.05 · accessed − 0.1 · over_length(3000, 5000), gated on a parsed
  answer and a finished lead. Every weight can be 0 (outcome only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from wideseek.types import Task, Trajectory, headline_metric

ACCESS_TOOL = "access"
RewardFn = Callable[[Task, Trajectory], float]


class RewardShaping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format_bonus: float = Field(
        0.1, ge=0, description="added when the scorer parsed the answer (0: no format bonus)"
    )
    access_bonus: float = Field(
        0.05, ge=0, description="added when any agent accessed a page (0: none)"
    )
    length_penalty: float = Field(
        0.1, ge=0, description="taken off at most, for the longest single generation"
    )
    length_limit: int = Field(3000, ge=1, description="no length penalty up to this many tokens")
    max_length_limit: int = Field(5000, ge=2, description="the full length penalty from here")
    qa_metric: str = Field("em", pattern="^(em|f1)$", description="a QA task's outcome: em | f1")
    shaping_needs_outcome: bool = Field(
        False,
        description="pay the format and access bonuses (and the length penalty) only when the "
        "outcome is > 0: bonuses then never reward a rollout that got nothing right",
    )


# -- terms -----------------------------------------------------------------------------------


def outcome(qa_metric: str = "em") -> RewardFn:
    """The scorer's headline: item F1 for a wide task, `qa_metric` (em | f1) for a QA one."""

    def outcome(task: Task, trajectory: Trajectory) -> float:
        return float(trajectory.scores.get(headline_metric(task.kind, qa_metric)) or 0.0)

    return outcome


def answer_parsed(task: Task, trajectory: Trajectory) -> float:
    """1 when the scorer read the final answer (its `parsed` flag), else 0."""
    return float(bool(trajectory.scores.get("parsed")))


def accessed(task: Task, trajectory: Trajectory) -> float:
    calls = (call for _, turn in trajectory.iter_turns() for call in turn.tool_calls)
    return float(any(call.name == ACCESS_TOOL for call in calls))


def over_length(limit: int, max_limit: int) -> RewardFn:
    """How far the longest single generation went past `limit`, as a share of the way to
    `max_limit` (0 to 1)."""

    def over_length(task: Task, trajectory: Trajectory) -> float:
        turns = trajectory.iter_turns()
        longest = max((turn.usage.completion_tokens for _, turn in turns), default=0)
        return min(max((longest - limit) / max(max_limit - limit, 1), 0.0), 1.0)

    return over_length


def lead_finished(task: Task, trajectory: Trajectory) -> float:
    lead = trajectory.lead
    return float(trajectory.error is None and lead is not None and lead.ok)


# -- composition -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    name: str  # its metrics key
    fn: RewardFn
    weight: float = 1.0


@dataclass(frozen=True)
class Reward:
    total: float
    values: dict[str, float]  # every term's and gate's unweighted value, by name
    gated: bool  # a gate was 0: the total is 0 whatever the terms say


@dataclass(frozen=True)
class CompositeReward:
    """Σ weight · term over `outcome` and `shaping`, 0 unless every gate is > 0 (see the module
    docstring)."""

    outcome: Term
    shaping: tuple[Term, ...] = ()
    gates: tuple[Term, ...] = ()
    shaping_needs_outcome: bool = False

    def names(self) -> list[str]:
        """The keys of `score().values`, in order: fixed for a reward, so metrics rows of one
        run share their keys."""
        return list(dict.fromkeys(t.name for t in (self.outcome, *self.shaping, *self.gates)))

    def score(self, task: Task, trajectory: Trajectory) -> Reward:
        terms = (self.outcome, *self.shaping, *self.gates)
        values = {t.name: t.fn(task, trajectory) for t in terms}
        gated = any(values[g.name] <= 0 for g in self.gates)
        total = self.outcome.weight * values[self.outcome.name]
        if not self.shaping_needs_outcome or values[self.outcome.name] > 0:
            total += sum(t.weight * values[t.name] for t in self.shaping)
        return Reward(0.0 if gated else total, values, gated)

    def __call__(self, task: Task, trajectory: Trajectory) -> float:
        return self.score(task, trajectory).total


def build_reward(shaping: RewardShaping) -> CompositeReward:
    """The published shaped reward from the config's weights (module docstring)."""
    return CompositeReward(
        outcome=Term("outcome", outcome(shaping.qa_metric)),
        shaping=(
            Term("format_ok", answer_parsed, shaping.format_bonus),
            Term("accessed", accessed, shaping.access_bonus),
            Term(
                "over_length",
                over_length(shaping.length_limit, shaping.max_length_limit),
                -shaping.length_penalty,
            ),
        ),
        # a reward never pays for the shaping alone when the task was not done
        gates=(Term("format_ok", answer_parsed), Term("lead_finished", lead_finished)),
        shaping_needs_outcome=shaping.shaping_needs_outcome,
    )
