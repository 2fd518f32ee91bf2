"""`RLConfig`, the schema of an RL run file, and the ids of the settings it holds.

Contract:
- `RLConfig` extends the trainers' `TrainerConfig`; every field, nested sections included
  (`agent`, `clip`, `shaping`, `guards`, `select`, `eval`, `rollout_engine`), is typed,
  documented and checked
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
from wideseek.llm.gguf_export import ExportWeights
from wideseek.train.dev_eval import DevEvalSettings
from wideseek.train.rl.batch import Normalise
from wideseek.train.rl.credit import Credit
from wideseek.train.rl.loss import ClipSettings
from wideseek.train.rl.rewards import RewardShaping
from wideseek.train.rl.task_selection import TaskSelection
from wideseek.train.trainable import LoraSettings
from wideseek.train.trainer_config import TrainerConfig


class RolloutEngine(BaseModel):
    """Where rollouts are sampled: the learner's own model, llama.cpp in process on a GGUF copy
    of each version (train/rl/llamacpp_sampler.py), or a vLLM / SGLang server that gets each new
    version of the weights through its own endpoints (llm/weight_push.py)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["local", "llama.cpp", "vllm", "sglang"] = Field(
        "local",
        description="local: the model being trained samples in-process (always on-policy); "
        "llama.cpp: in process too, each version's merged weights written as a GGUF file and "
        "loaded (a CPU without bf16 units: ~3x faster than torch's fp32; needs a model whose "
        "base is a GGUF file, as the default's); vllm | sglang: an OpenAI-compatible server "
        "over the token path, the weights pushed to it after updates (a LoRA adapter; full "
        "weights only to SGLang)",
    )
    weights: ExportWeights = Field(
        "f16",
        description="llama.cpp: the type the changed weights are written as: f16 (sampler "
        "against learner 0.0004 KL a token on the shipped model, as fast as q8_0 at 8-16 "
        "requests in flight: bench/rl_llamacpp.py, bench/local_engine.py), q8_0 (0.008: 20x "
        "the mismatch every importance ratio sees) or f32",
    )
    base_url: str | None = Field(
        None, description="the server's URL (http://host:8000); required unless kind is local"
    )
    model: str | None = Field(
        None, description="the base model's name on the server (None: the first it lists)"
    )
    adapter: str = Field(
        "wideseek-policy",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="the pushed adapter's name; version k is served as <adapter>-v<k>",
    )
    shared_dir: str | None = Field(
        None,
        description="where the learner writes each pushed version (v<k>/), a directory the "
        "server can read (None: out_dir/pushed)",
    )
    server_dir: str | None = Field(
        None,
        description="the same directory as the server sees it, when mounted elsewhere (a "
        "container); None: shared_dir",
    )
    merged: bool = Field(
        True,
        description="local: sample and evaluate with a merged copy of a LoRA policy, refreshed "
        "after each update (train/rl/merged_sampler.py: plain layers instead of peft's adapter "
        "ops at every decode step; a second copy of the weights in memory), else with the "
        "learner's own peft model",
    )
    timeout_s: float = Field(600.0, gt=0, description="per request, completions and pushes")
    max_concurrency: int = Field(64, ge=1, description="completion requests in flight at once")

    @model_validator(mode="after")
    def _needs_a_server(self) -> RolloutEngine:
        if self.kind in ("vllm", "sglang") and not self.base_url:
            raise ValueError(f"rollout_engine.base_url: a {self.kind} engine needs the URL")
        return self


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
    max_entropy_rise: float | None = Field(
        None,
        gt=0,
        description="trips when the entropy of the trained tokens exceeds the run's first "
        "step's by this share or more (0.5: +50%; None: off): the two measured arms that "
        "lost dev reward first doubled it while their agents' calls broke",
    )
    max_malformed: float | None = Field(
        None,
        gt=0,
        description="trips when malformed tool calls per rollout reach this (None: off)",
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
    steps: int = Field(
        10,
        ge=0,
        description="optimizer steps in all (a rerun resumes); 0: only what comes before step "
        "1 (the pass-rate measurement, the start model's dev figures), which other runs borrow",
    )
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
    kl_coef: float = Field(
        0.0,
        ge=0,
        description="weight of a KL penalty to the start model on the trained tokens, its "
        "low-variance (k3) estimate weighted as the policy loss (0: none, as published: "
        "RLinf's configs set kl_beta 0.001 but build no reference model, so none is applied); "
        "above 0 the learner keeps a frozen copy of the start model",
    )
    normalise_over: Normalise = Field(
        "step",
        description="B in the token weights 1/(B·A_i·N_ia): step = every rollout of the step, "
        "flat groups' included (published) | kept = only the rollouts trained on",
    )
    guards: Guards = Field(default_factory=Guards, description="collapse guards")
    agent: AgentConfig = Field(
        default_factory=AgentConfig,
        description="agent settings of the rollouts (limits, context; those left unset: a "
        "local model's recommendation, else the evaluation limits, as in a dev evaluation); mode, "
        "temperature and seed come from the fields above, top_p is always 1 and top_k 0 (no cut)",
    )
    concurrency: int = Field(8, ge=1, description="rollouts run at once")
    save_every: int = Field(5, ge=1, description="checkpoint every N steps (and at the end)")
    eval_every: int = Field(
        0, ge=0, description="dev evaluation every N steps, at the start and at the end (0: off)"
    )
    eval: DevEvalSettings = Field(
        default_factory=DevEvalSettings, description="the dev evaluation's tasks and settings"
    )
    eval_start_in: str | None = Field(
        None,
        description="a run directory whose step-0 dev evaluation (of the same start weights and "
        "dtype, under the same eval settings: both checked) this run takes instead of running "
        "its own, so the arms of a comparison stand beside one figure, evaluated once; used "
        "only where it fits (else evaluated here, with a note); None: evaluate here",
    )
    max_staleness: int = Field(
        0,
        ge=0,
        description="rollouts may be sampled by weights up to this many updates older than the "
        "learner's (0: strictly on-policy). A remote rollout engine is sent new weights only "
        "when it lags more; a resumed step reuses a rollout folder made that recently; the "
        "loss's old logprobs are always the sampler's own, recorded on the trajectory",
    )
    early_stop_ratio: float | None = Field(
        5.0,
        gt=1,
        description="drop an agent sample's loss when its mean importance ratio (new / "
        "sampler) over its trained tokens exceeds this (RLinf's early_stop_imp_ratio, 5.0 as "
        "published; None: off); counted as early_stopped",
    )
    rollout_engine: RolloutEngine = Field(
        default_factory=RolloutEngine,
        description="where rollouts are sampled: local (the learner's model), llama.cpp (in "
        "process, a GGUF copy of each version) or a vLLM / SGLang server that the new weights "
        "are pushed to",
    )
    rollouts_ahead: bool = Field(
        False,
        description="sample step k+1's rollouts on the rollout_engine server while the learner "
        "updates on step k's (needs a server and max_staleness >= 1: those rollouts come from "
        "weights at least one update old)",
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
        in_process = self.rollout_engine.kind in ("local", "llama.cpp")
        if self.rollouts_ahead and (in_process or not self.max_staleness):
            raise ValueError(
                "rollouts_ahead: sampling the next step during the update needs a rollout_engine "
                "server (an in-process engine, local or llama.cpp, samples with the weights "
                "being trained) and "
                "max_staleness >= 1 (those rollouts are one update old when trained on)"
            )
        if self.rollout_engine.kind == "vllm" and self.lora is None:
            raise ValueError(
                "rollout_engine: vLLM takes new weights only as a LoRA adapter (it has no "
                "stable HTTP endpoint to reload full weights): set lora, or use sglang"
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
            "group_size", "temperature", "agent", "concurrency", "seed",
            "rollout_engine"}  # fmt: skip
# fields that change what a pass-rate measurement samples (its K aside)
MEASURED = ROLLOUT - {"select", "tasks_per_step", "group_size"}
# (rollouts_ahead only moves when a step samples; which weights sampled it is stamped on the
# folder and bounded by max_staleness, as without it)
NOT_WEIGHTS = {"out_dir", "steps", "save_every", "keep_checkpoints", "guards", "eval_every",
                "eval", "eval_start_in", "rollouts_ahead"}  # fmt: skip
# fields added after runs existed: left out of the ids while at their defaults, so those runs
# keep their policy and rollout ids (and their folders stay reusable on resume)
LATER = ("select", "max_staleness", "early_stop_ratio", "rollout_engine", "rollouts_ahead",
         "kl_coef")  # fmt: skip


def digest(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def settings_of(config: RLConfig, **fields: Any) -> dict[str, Any]:
    """`config`'s fields (model_dump's include / exclude) as the ids hash them: the `LATER`
    fields at their defaults are left out, so runs from before them keep their ids."""
    dump = config.model_dump(mode="json", **fields)
    for name in LATER:
        if getattr(config, name) == _DEFAULTS[name]:
            dump.pop(name, None)
    return dump


_DEFAULTS = {name: RLConfig.model_fields[name].get_default(call_default_factory=True)
             for name in LATER}  # fmt: skip


def policy_after(policy: str, config: RLConfig) -> str:
    """The id of the weights one update under `config` makes from the weights `policy`: a hash
    chain, so equal settings after different histories give different ids."""
    return digest(policy, settings_of(config, exclude=NOT_WEIGHTS))
