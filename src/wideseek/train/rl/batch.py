"""A step's rollouts → what one update trains on: rewards, advantages, samples, token weights.

Contract: `build_batch(trajectories, reward, credit, suite_of)` scores every rollout with
`reward` (a `CompositeReward`), normalises the rewards within each task's group of G trials
(`advantages.group_advantages`), and gives each rollout the samples of its trained turns
(`credit.trained_turns` → `samples.agent_sample`). A rollout is *kept* when its advantage is
non-zero and it has a trained token; the others (flat groups, nothing trainable) are
*dropped*: they take no gradient, but as published they still count in B.
`StepBatch.weights(normalise)` gives the token weights 1/(B·A_i·N_ia) of the kept rollouts
with B = every rollout of the step ("step", published) or only the kept ones ("kept": each
kept rollout then weighs more when many groups are flat; up to G× tasks_per_step / kept).
It knows no model: `trainer.update` turns the result into one optimizer step.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from wideseek.train.rl.advantages import group_advantages, is_flat
from wideseek.train.rl.credit import Credit, trained_turns
from wideseek.train.rl.loss import token_weights
from wideseek.train.rl.rewards import CompositeReward, Reward
from wideseek.train.rl.samples import AgentSample, agent_sample
from wideseek.types import Task, Trajectory

Normalise = Literal["step", "kept"]


@dataclass
class Rollout:
    trajectory: Trajectory
    suite: str
    reward: Reward
    advantage: float = 0.0
    samples: list[AgentSample] = field(default_factory=list)

    @property
    def kept(self) -> bool:
        return self.advantage != 0 and bool(self.samples)


@dataclass
class StepBatch:
    rollouts: list[Rollout]  # every rollout of the step, group by group
    groups: int
    flat_groups: int

    @property
    def kept(self) -> list[Rollout]:
        return [r for r in self.rollouts if r.kept]

    def batch_size(self, normalise: Normalise) -> int:
        """B of the token weights."""
        return len(self.rollouts) if normalise == "step" else len(self.kept)

    def weights(self, normalise: Normalise) -> list[list[float]]:
        """Per kept rollout, per sample: its tokens' weight 1/(B·A_i·N_ia)."""
        generated = [[s.n_generated for s in r.samples] for r in self.kept]
        return token_weights(generated, self.batch_size(normalise))


def build_batch(
    trajectories: Sequence[Trajectory],
    reward: CompositeReward,
    credit: Credit,
    suite_of: Callable[[Task], str],
) -> StepBatch:
    groups: dict[str, list[Rollout]] = defaultdict(list)
    for traj in trajectories:
        scored = reward.score(traj.task, traj)
        groups[traj.task.id].append(Rollout(traj, suite_of(traj.task), scored))
    flat = 0
    for members in groups.values():
        totals = [r.reward.total for r in members]
        flat += is_flat(totals)
        for rollout, advantage in zip(members, group_advantages(totals), strict=True):
            rollout.advantage = advantage
            if advantage == 0:
                continue
            chosen = trained_turns(rollout.trajectory.task, rollout.trajectory, credit)
            agents = [a for a in rollout.trajectory.agents if a.agent_id in chosen]
            samples = (agent_sample(a, chosen[a.agent_id]) for a in agents)
            rollout.samples = [s for s in samples if s is not None]
    rollouts = [r for members in groups.values() for r in members]
    return StepBatch(rollouts, len(groups), flat)
