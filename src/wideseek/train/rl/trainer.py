"""`train_rl(config)`: rollouts → rewards → shared advantages → per-agent samples → one update.

Each step k:
1) takes the next `tasks_per_step` tasks of the configured world suites (a seeded order,
   cycled; the position is the step number, so a resumed run continues with the same tasks);
2) runs `group_size` trials of each through the one suite runner (`runtime.run_suite`) with the
   policy itself as the engine — the trainer's model object, shared, not copied, so every
   rollout of step k samples from exactly the weights after update k-1 (policy version k, on
   every trajectory's run directory `out_dir/rollouts/step-<k>`): fully on-policy;
3) scores each rollout (`rewards.rollout_reward`) and normalises rewards within each task's
   group (`advantages.group_advantages`); flat groups are counted;
4) turns every agent of every rollout with a non-zero advantage into one sequence of stored ids
   (`samples.agent_sample`), weighted 1/(B·A_i·N_ia) (`loss.token_weights`), and takes one
   optimizer step on the clipped loss (`loss.policy_loss`), recomputing logprobs at the
   sampling temperature;
5) logs one metrics row (reward and its terms, outcome, flat groups, subagents per rollout,
   response length, entropy, clip fractions, KL to the sampler, failure rates, seconds in
   rollout vs update), checks the collapse guards, and checkpoints every `save_every` steps.

Checkpoints `out_dir/checkpoint-<k>/` hold the accelerate state (trained weights, optimizer,
RNG) and a loadable model (`model/`: the adapter), with `trainer_state.json` written last; a
new run in the same out_dir resumes from the latest complete one, metrics after it dropped.
A guard that trips (reward stuck at 0, subagents per rollout collapsing, all groups flat) for
`patience` steps in a row stops the run with one line saying why and where the last good
checkpoint is; `out_dir/final` is then that checkpoint's model.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import statistics
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from wideseek.errors import WideseekError
from wideseek.io import append_jsonl_line, atomic_write_text
from wideseek.train.rl.advantages import group_advantages, is_flat
from wideseek.train.rl.loss import ClipSettings, policy_loss, token_weights
from wideseek.train.rl.rewards import RewardShaping, rollout_reward
from wideseek.train.rl.samples import AgentSample, agent_sample
from wideseek.train.sft import METRICS, TRAINER_STATE, checkpoints, truncate_metrics
from wideseek.train.trainable import LoraSettings, Trainable, load_trainable, save_trained
from wideseek.train.training_card import TrainingCard
from wideseek.types import Task, Trajectory


class CollapseError(WideseekError, RuntimeError):
    """A collapse guard tripped: training stopped at the last good checkpoint."""


class Guards(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_reward: float | None = Field(0.0, description="stop when the mean reward is <= this")
    min_subagents: float | None = Field(
        None, description="stop when subagents per multi-agent rollout fall to <= this"
    )
    max_flat_groups: float | None = Field(
        1.0, ge=0, le=1, description="stop when this share of groups (or more) is flat"
    )
    patience: int = Field(3, ge=1, description="steps in a row a guard must trip")


class RLConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field("default", description="base spec or adapter dir (an SFT run's final)")
    out_dir: str
    lora: LoraSettings | None = Field(
        default_factory=LoraSettings, description="a new adapter when `model` is not one"
    )
    dtype: str = "auto"
    world: str | None = Field(None, description="world dir; None: the shipped one")
    suites: list[Literal["wide", "deep"]] = ["wide", "deep"]
    split: Literal["train", "dev", "test"] = "train"
    mode: Literal["multi", "single"] = "multi"
    tasks_per_step: int = Field(4, ge=1)
    group_size: int = Field(4, ge=2, description="rollouts per task (G)")
    steps: int = Field(10, ge=1)
    lr: float = Field(1e-5, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    temperature: float = Field(1.0, gt=0, description="sampling temperature of the rollouts")
    clip: ClipSettings = Field(default_factory=ClipSettings)
    shaping: RewardShaping = Field(default_factory=RewardShaping)
    guards: Guards = Field(default_factory=Guards)
    agent: dict[str, Any] = Field(default_factory=dict, description="AgentConfig fields")
    concurrency: int = Field(8, ge=1, description="rollouts run at once")
    save_every: int = Field(5, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    seed: int = 0


# RLConfig fields that shape the weights: a saved model's card lists them
_RECIPE = {"lora", "dtype", "suites", "split", "mode", "tasks_per_step", "group_size", "steps",
           "lr", "temperature", "seed"}  # fmt: skip


def step_tasks(pool: Sequence[Task], step: int, per_step: int, seed: int) -> list[Task]:
    """The tasks of `step`: a seeded shuffle of the pool, cycled, `per_step` at a time."""
    order = list(range(len(pool)))
    random.Random(seed).shuffle(order)
    start = step * per_step
    return [pool[order[(start + i) % len(pool)]] for i in range(per_step)]


class RLTrainer:
    """The loop of the module docstring; one instance per run."""

    def __init__(self, config: RLConfig, show_progress: bool = True) -> None:
        import torch
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        from wideseek.llm.local import LocalEngine
        from wideseek.world import load_world
        from wideseek.world.suites import suite_tasks

        self.config = config
        self.out = Path(config.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.show_progress = show_progress
        set_seed(config.seed)
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available())
        self.trainable: Trainable = load_trainable(config.model, lora=config.lora,
                                                   dtype=config.dtype)  # fmt: skip
        trained = [p for p in self.trainable.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            trained, lr=config.lr, betas=(0.9, 0.999), eps=1e-5, weight_decay=config.weight_decay
        )
        self.model, self.optimizer = self.accelerator.prepare(self.trainable.model, optimizer)
        policy = self.accelerator.unwrap_model(self.model)
        # the resolved model, not the raw spec: "default" names no directory, and the engine
        # reads the model's recommended settings from it
        loaded = (policy, self.trainable.tokenizer)
        self.engine = LocalEngine(self.trainable.resolved, loaded=loaded, model_name="policy")
        self.world = load_world(config.world)
        self.pool = [t for s in config.suites for t in suite_tasks(self.world, s, config.split)]
        if not self.pool:
            raise WideseekError(f"no {'/'.join(config.suites)} tasks in split {config.split}")
        self.step = 0
        self.tripped: dict[str, int] = defaultdict(int)
        self.last_good: int | None = None
        self.last_reward: float | None = None  # the last step's mean reward, for the card

    # -- checkpoints ---------------------------------------------------------------------------

    def checkpoints(self) -> list[Path]:
        return checkpoints(self.out)

    def resume(self) -> None:
        found = self.checkpoints()
        if not found:
            return
        latest = found[-1]
        self.accelerator.load_state(str(latest))
        state = json.loads((latest / TRAINER_STATE).read_text())
        self.step, self.last_good = int(state["step"]), state.get("last_good")
        self.tripped = defaultdict(int, state.get("tripped", {}))
        truncate_metrics(self.out / METRICS, self.step)

    def save(self, good: bool) -> Path:
        path = self.out / f"checkpoint-{self.step}"
        self.accelerator.save_state(str(path))
        policy = self.accelerator.unwrap_model(self.model)
        save_trained(self.trainable, policy, path / "model", self.card())
        if good:
            self.last_good = self.step
        state = {"step": self.step, "last_good": self.last_good, "tripped": dict(self.tripped)}
        atomic_write_text(path / TRAINER_STATE, json.dumps(state))
        keep = set(self.checkpoints()[-self.config.keep_checkpoints :])
        for old in self.checkpoints():  # never drop the last good one: a rollback needs it
            if old not in keep and old.name != f"checkpoint-{self.last_good}":
                shutil.rmtree(old, ignore_errors=True)
        return path

    def card(self) -> TrainingCard:
        """The saved model's README.md: the settings that made it and how far it got."""
        recipe = self.config.model_dump(include=_RECIPE)
        return TrainingCard("rl", recipe, {"steps": self.step, "last reward": self.last_reward})

    # -- one step ------------------------------------------------------------------------------

    async def rollouts(self, tasks: list[Task]) -> list[tuple[Trajectory, dict[str, Any]]]:
        from wideseek.config import AgentConfig, Config, ToolsConfig
        from wideseek.runtime import run_suite

        agent = AgentConfig.model_validate(
            {**self.config.agent, "mode": self.config.mode,
             "temperature": self.config.temperature, "seed": self.config.seed + self.step}
        )  # fmt: skip
        config = Config(agent=agent, tools=ToolsConfig(corpus=str(self.world.corpus_path)))
        self.model.eval()
        run = await run_suite(
            tasks, config, self.out / "rollouts" / f"step-{self.step + 1}",
            suite=f"rl-step-{self.step + 1}", engine=self.engine, trials=self.config.group_size,
            concurrency=self.config.concurrency, extra={"policy_version": self.step + 1},
            show_progress=self.show_progress,
        )  # fmt: skip
        scores = {(r.instance_id, r.trial): r.scores for r in run.rows}
        return [(t, scores.get((t.task.id, t.trial), {})) for t in run.trajectories()]

    def update(self, batch: list[tuple[list[AgentSample], float]]) -> dict[str, float]:
        """One optimizer step over (a rollout's agent samples, its advantage) pairs."""
        import torch

        weights = token_weights([[s.n_generated for s in samples] for samples, _ in batch])
        self.model.train()
        self.optimizer.zero_grad()
        stats: dict[str, list[float]] = defaultdict(list)
        device = self.accelerator.device
        for (samples, advantage), agent_weights in zip(batch, weights, strict=True):
            for sample, weight in zip(samples, agent_weights, strict=True):
                ids = torch.tensor([sample.input_ids], device=device)  # (1, L)
                logits = self.model(input_ids=ids).logits[:, :-1]  # (1, L-1, V)
                # token_logprobs' definition, with the log-softmax kept for the entropy below
                logp = torch.log_softmax(logits.float() / self.config.temperature, dim=-1)
                new = logp.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)  # (1, L-1)
                mask = torch.tensor([sample.response_mask[1:]], device=device)
                old = torch.tensor([sample.old_logprobs[1:]], device=device)
                w = torch.full_like(old, weight)
                loss, s = policy_loss(new, old, torch.tensor([advantage], device=device), w,
                                      mask, self.config.clip)  # fmt: skip
                self.accelerator.backward(loss)
                with torch.no_grad():
                    entropy = -(logp.exp() * logp).sum(-1)[mask].mean()
                stats["entropy"].append(float(entropy))
                for key, value in s.items():
                    stats[key].append(value)
        norm = self.accelerator.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad()
        self.engine.weights_changed()  # its cached keys/values are the old weights'
        row = {k: statistics.fmean(v) for k, v in stats.items()}
        row["grad_norm"] = float(norm)
        row["trained_agents"] = float(sum(len(s) for s, _ in batch))
        return row

    def run_step(self) -> dict[str, Any]:
        cfg = self.config
        tasks = step_tasks(self.pool, self.step, cfg.tasks_per_step, cfg.seed)
        started = time.time()
        rolled = asyncio.run(self.rollouts(tasks))
        rollout_s = time.time() - started
        groups: dict[str, list[tuple[Trajectory, Any]]] = defaultdict(list)
        for traj, scores in rolled:
            groups[traj.task.id].append((traj, rollout_reward(traj, scores, cfg.shaping)))
        batch: list[tuple[list[AgentSample], float]] = []
        flat = 0
        for members in groups.values():
            rewards = [r.total for _, r in members]
            flat += is_flat(rewards)
            for (traj, _), adv in zip(members, group_advantages(rewards), strict=True):
                samples = [s for a in traj.agents if a.ok and (s := agent_sample(a))]
                if adv != 0 and samples:
                    batch.append((samples, adv))
        started = time.time()
        update = self.update(batch) if batch else {}
        rewards = [r for members in groups.values() for _, r in members]
        trajectories = [t for t, _ in rolled]
        multi = [t for t in trajectories if t.mode == "multi"]
        failures: dict[str, float] = defaultdict(float)
        for t in trajectories:
            for kind, n in t.failure_counts().items():
                failures[f"fail_{kind}"] += n / len(trajectories)
        return {
            "step": self.step + 1,
            **{k: statistics.fmean(r.terms()[k] for r in rewards) for k in rewards[0].terms()},
            "flat_groups": flat / max(len(groups), 1),
            "subagents_per_rollout": statistics.fmean(len(t.subagents) for t in multi)
            if multi else 0.0,
            "response_tokens": statistics.fmean(
                turn.usage.completion_tokens for t in trajectories for _, turn in t.iter_turns()
            ) if any(True for t in trajectories for _ in t.iter_turns()) else 0.0,
            **update,
            **failures,
            "rollout_s": round(rollout_s, 2),
            "update_s": round(time.time() - started, 2),
        }  # fmt: skip

    # -- guards --------------------------------------------------------------------------------

    def check_guards(self, row: dict[str, Any]) -> str | None:
        """Why the run must stop (a guard tripped `patience` steps in a row), or None."""
        g = self.config.guards
        checks = {
            "reward": (g.min_reward is not None and row["reward"] <= g.min_reward,
                       f"mean reward {row['reward']:.3f} <= {g.min_reward}"),
            "subagents": (g.min_subagents is not None and self.config.mode == "multi"
                          and row["subagents_per_rollout"] <= g.min_subagents,
                          f"subagents per rollout {row['subagents_per_rollout']:.2f} <= "
                          f"{g.min_subagents}"),
            "flat": (g.max_flat_groups is not None and row["flat_groups"] >= g.max_flat_groups,
                     f"{row['flat_groups']:.0%} of groups all-equal (no learning signal)"),
        }  # fmt: skip
        why = None
        for name, (tripped, text) in checks.items():
            self.tripped[name] = self.tripped[name] + 1 if tripped else 0
            if self.tripped[name] >= g.patience and why is None:
                why = f"{text} for {self.tripped[name]} steps"
        return why

    def train(self) -> Path:
        self.resume()
        final = self.out / "final"
        while self.step < self.config.steps:
            row = self.run_step()
            self.step += 1
            self.last_reward = row["reward"]
            why = self.check_guards(row)
            row["guard"] = why
            append_jsonl_line(self.out / METRICS, json.dumps(row))
            if why is not None:
                self.save(good=False)
                return self.roll_back(why)
            if self.step % self.config.save_every == 0 or self.step == self.config.steps:
                self.save(good=True)
        save_trained(self.trainable, self.accelerator.unwrap_model(self.model), final, self.card())
        return final

    def roll_back(self, why: str) -> Path:
        final = self.out / "final"
        if self.last_good is None:
            raise CollapseError(f"step {self.step}: {why}; no good checkpoint to roll back to")
        good = self.out / f"checkpoint-{self.last_good}" / "model"
        shutil.rmtree(final, ignore_errors=True)
        shutil.copytree(good, final)
        raise CollapseError(
            f"step {self.step}: {why}; stopped, rolled back to checkpoint-{self.last_good} "
            f"({final})"
        )


def train_rl(config: RLConfig, show_progress: bool = True) -> Path:
    return RLTrainer(config, show_progress).train()
