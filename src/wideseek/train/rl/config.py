"""`RLConfig`, the schema of an RL run file, and the ids of the settings it holds.

Contract:
- `RLConfig` extends the trainers' `TrainerConfig`; every field, nested sections included
  (`agent`, `clip`, `shaping`, `guards`, `select`, `eval`), is typed, documented and checked
  when the file loads. The agent settings that sampling must share with the learner (mode,
  temperature, seed, top_p, top_k) are RL's own: setting them under `agent` is refused.
- The field sets say what each setting touches: `RECIPE` (listed on a saved model's card),
  `ROLLOUT` (what a step samples), `MEASURED` (what a pass-rate measurement samples),
  `NOT_WEIGHTS` (what leaves the weights alone).
- `digest(...)` is a short stable hash; `settings_of(config, include= | exclude=)` the dump it
  hashes (a `select` section at its defaults left out, so ids from before it hold);
  `policy_after(policy, config)` the id of the weights one update under `config` makes from
  `policy`: a hash chain.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, model_validator

from wideseek.config import AgentConfig
from wideseek.train.dev_eval import DevEvalSettings
from wideseek.train.rl.batch import Normalise
from wideseek.train.rl.credit import Credit
from wideseek.train.rl.loss import ClipSettings
from wideseek.train.rl.rewards import RewardShaping
from wideseek.train.rl.task_selection import TaskSelection
from wideseek.train.trainable import LoraSettings
from wideseek.train.trainer_config import TrainerConfig


class Guards(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_reward: float | None = Field(
        0.0, description="trips when the step's mean reward is <= this (None: off)"
    )
    min_outcome: float | None = Field(
        None,
        description="trips when the mean outcome (the scorer's headline, no shaping) over the "
        "last `outcome_window` steps is <= this (None: off): shaping can keep the reward up "
        "while nothing is answered right",
    )
    outcome_window: int = Field(5, ge=1, description="steps the outcome guard averages over")
    min_subagents: float | None = Field(
        None, description="trips when subagents per multi-agent rollout fall to <= this"
    )
    max_flat_groups: float | None = Field(
        1.0, ge=0, le=1, description="trips when this share of groups (or more) is flat"
    )
    patience: int = Field(3, ge=1, description="steps in a row a guard must trip to stop")


# Agent settings RL sets itself: sampling must be what the learner's logprobs assume.
_RL_AGENT = {"mode": "`mode`", "temperature": "`temperature`", "seed": "`seed` (+ the step)"}


class RLConfig(TrainerConfig):
    model: str = Field(
        "default", description="start model: a base spec, or an adapter dir (an SFT run's final)"
    )
    out_dir: str = Field(description="checkpoints, rollouts/, dev-eval/, metrics.jsonl, final/")
    lora: LoraSettings | None = Field(
        default_factory=LoraSettings,
        description="a new adapter when `model` is not one (None: train every weight)",
    )
    world: str | None = Field(None, description="world dir; None: the shipped one")
    suites: list[Literal["wide", "deep"]] = Field(
        ["wide", "deep"], description="task suites of the world the tasks come from"
    )
    split: Literal["train", "dev", "test"] = Field("train", description="their split")
    select: TaskSelection = Field(
        default_factory=TaskSelection,
        description="which of those tasks to train on (ids, first N, pass-rate window) and the "
        "resampling of flat groups",
    )
    mode: Literal["multi", "single"] = Field(
        "multi", description="multi: lead + subagents; single: one agent"
    )
    tasks_per_step: int = Field(4, ge=1, description="tasks (groups) per step")
    group_size: int = Field(4, ge=2, description="rollouts per task (G)")
    steps: int = Field(10, ge=1, description="optimizer steps in all (a rerun resumes)")
    lr: float = Field(1e-5, gt=0, description="constant learning rate (AdamW)")
    temperature: float = Field(1.0, gt=0, description="sampling temperature of the rollouts")
    clip: ClipSettings = Field(
        default_factory=ClipSettings, description="the ratio clipping of the policy loss"
    )
    shaping: RewardShaping = Field(
        default_factory=RewardShaping, description="the reward's terms and their weights"
    )
    credit: Credit = Field(
        "published",
        description="turns trained with the advantage: published (a failed rollout's failed "
        "turns, a good one's healthy agents; train/rl/credit.py) | all | healthy (failed "
        "agents dropped)",
    )
    normalise_over: Normalise = Field(
        "step",
        description="B in the token weights 1/(B·A_i·N_ia): step = every rollout of the step, "
        "flat groups' included (published) | kept = only the rollouts trained on",
    )
    guards: Guards = Field(default_factory=Guards, description="collapse guards")
    agent: AgentConfig = Field(
        default_factory=AgentConfig,
        description="agent settings of the rollouts (limits, context); mode, temperature and "
        "seed come from the fields above, top_p is always 1 and top_k 0 (no cut)",
    )
    concurrency: int = Field(8, ge=1, description="rollouts run at once")
    save_every: int = Field(5, ge=1, description="checkpoint every N steps (and at the end)")
    eval_every: int = Field(
        0, ge=0, description="dev evaluation every N steps, at the start and at the end (0: off)"
    )
    eval: DevEvalSettings = Field(
        default_factory=DevEvalSettings, description="the dev evaluation's tasks and settings"
    )

    @model_validator(mode="after")
    def _sampling_is_rl_s(self) -> RLConfig:
        given = self.agent.model_fields_set
        for name, where in _RL_AGENT.items():
            mine = getattr(self, name, None)
            if name in given and getattr(self.agent, name) not in (mine, None):
                raise ValueError(f"agent.{name}: RL sets it from {where}")
        for name, off in (("top_p", 1.0), ("top_k", 0)):
            if name in given and getattr(self.agent, name) not in (off, None):
                raise ValueError(
                    f"agent.{name}: RL samples with {name} {off} (the update's logprobs are "
                    "untruncated)"
                )
        return self

    @field_serializer("agent")
    def _agent_as_given(self, agent: AgentConfig) -> dict[str, Any]:
        # what the run file set, so the model's own recommendations still fill the rest
        return agent.model_dump(mode="json", exclude_unset=True)


# RLConfig fields that shape the weights: a saved model's card lists them
RECIPE = {"lora", "dtype", "suites", "split", "mode", "tasks_per_step", "group_size", "steps",
           "lr", "temperature", "seed"}  # fmt: skip
# fields that change what a step samples, and, with the rest, what its update does
ROLLOUT = {"model", "world", "suites", "split", "select", "mode", "tasks_per_step",
            "group_size", "temperature", "agent", "concurrency", "seed"}  # fmt: skip
# fields that change what a pass-rate measurement samples (its K aside)
MEASURED = ROLLOUT - {"select", "tasks_per_step", "group_size"}
NOT_WEIGHTS = {"out_dir", "steps", "save_every", "keep_checkpoints", "guards", "eval_every",
                "eval"}  # fmt: skip


def digest(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def settings_of(config: RLConfig, **fields: Any) -> dict[str, Any]:
    """`config`'s fields (model_dump's include / exclude) as the ids hash them: a `select`
    section left at its defaults is left out, so runs from before it keep their ids."""
    dump = config.model_dump(mode="json", **fields)
    if config.select == TaskSelection():
        dump.pop("select", None)
    return dump


def policy_after(policy: str, config: RLConfig) -> str:
    """The id of the weights one update under `config` makes from the weights `policy`: a hash
    chain, so equal settings after different histories give different ids."""
    return digest(policy, settings_of(config, exclude=NOT_WEIGHTS))
