"""`train_rl(config)`: rollouts → rewards → shared advantages → per-agent samples → one update.

The task pool: the configured suites' tasks of the split, narrowed by the `select` section
(`task_selection`: task ids, the first N of each suite, and the pass-rate window, measured with
the start model before step 1 into `out_dir/pass-rates.json` (rollouts in `pass-rate/`) and
read back by a resumed run).

Each step k (1-based):
1) takes the next `tasks_per_step` tasks of the pool (a seeded order, cycled; the position is
   the step number, so a resumed run continues with the same tasks);
2) runs `group_size` trials of each through the one world entry (`runtime.world_run.run_world`,
   the suite runner underneath) with the policy itself as the engine — the trainer's model
   object, shared, not copied, so every rollout of step k samples from exactly the weights
   after k-1 updates (policy version k-1): fully on-policy. With `rollout_engine` a vLLM or
   SGLang server samples instead, over the HTTP engine's token path (`remote.RemotePolicy`);
   the learner's weights are written to a shared directory and pushed through the server's own
   endpoints (`llm/weight_push.py`) whenever the server's version lags the learner's by more
   than `max_staleness` (0: before every step), so rollouts may come from weights up to that
   many updates old; a refused push stops the run with the trained weights checkpointed
   (`step_or_keep_state`). With `rollouts_ahead` (a server and `max_staleness` >= 1), step
   k+1's rollouts start on the server as soon as step k's are in, and sample while step k
   updates (`sample_ahead`, `ahead.SamplingAhead`: their own event loop in a thread of their
   own); the push they need happens before they start, never while any are in flight, and a
   dev evaluation (which pushes the newest weights) first waits for them. Sampling is
   untruncated (top_p 1, no top-k, whatever the model's generation config recommends), the
   distribution the update's logprobs are computed from.
   With `select.resample_flat`, a flat group (every rollout the same reward) is replaced by
   the group of another task of the pool (`task_selection.replacement_tasks`), tried in
   rounds (`rollouts/step-k/resample-<r>/`) until no flat group is left or that many
   replacement groups were tried; the replaced groups leave the step (B counts the rest);
3) scores each rollout with the reward (`rewards.build_reward`, or the one given), normalises
   rewards within each task's group and picks the trained turns (`batch.build_batch`,
   `credit`);
4) weights each trained token 1/(B·A_i·N_ia), B every rollout of the step by default
   (`normalise_over`), and takes one optimizer step on the clipped loss (`loss.policy_loss`),
   recomputing logprobs at the sampling temperature; the ratio's old logprobs are those the
   sampler recorded on the trajectory, whichever version sampled; an agent sample whose mean
   ratio exceeds `early_stop_ratio` (5.0, RLinf's early_stop_imp_ratio) adds no gradient and
   is counted (`early_stopped`);
5) logs one metrics row, checks the collapse guards, evaluates on dev tasks every `eval_every`
   steps (`dev_eval.evaluate_engine` over the same shared engine), and checkpoints every
   `save_every` steps.

Metrics (`out_dir/metrics.jsonl`): one row per step, plus a step-0 row with the start model's
dev figures when `eval_every` is set; every row of a run has the same keys (`metric_keys`),
None where a figure was not measured at that step: policy version, rollouts kept vs dropped,
reward mean/std and per suite, each reward term, advantage mean/std of the kept rollouts, loss,
lr, grad norm, trained agents and tokens, entropy, clip fractions, ratio, KL to the sampler,
agent samples early-stopped, the staleness of the step's rollouts (learner version - sampler
version), failure rates per kind, seconds in rollout (the learner's wait for them: with
`rollouts_ahead`, only what the previous update did not cover) / update / evaluation, the guard that
tripped, the dev figures (`dev_*`) of the weights after the step's update, and with
`select.resample_flat` the replacement groups tried (`resampled_groups`) and the flat groups
they replaced (`replaced_groups`).

Data parallel: launched as N processes (`accelerate launch --num_processes N` on GPUs,
`torchrun --nproc_per_node N` anywhere; CPU-only processes join over gloo), the main process
alone runs steps 1-3 (rollouts, rewards, batch) and every process gets the step's whole batch
(`processes.LearnerProcesses.from_main`). Step 4 is split: every process computes the token
weights over the *whole* step (B and A_i are the step's, not a shard's), trains on its share
of the agent samples (`shard`, balanced by length), and DDP all-reduces the gradients once, on
each process's last backward (the others under `no_sync`); as DDP averages, each loss is
scaled by N, so the step's gradient is the sum over every sample, as in one process. The
metrics of the update are gathered from every process. The main process alone writes
(metrics, rollouts, dev evaluations, pushes, the model and trainer state); each process saves
its own RNG state into a checkpoint (accelerate), and a resumed run loads it back.

Checkpoints, metrics and final/ follow train/checkpoints.py's layout; the trainer state holds
the step, the policy id, the guards' counters, and whether the checkpoint is *good* (saved
while no guard was tripping) with the last good step. A new run in the same out_dir resumes
from the latest complete one, metrics after it dropped; one it cannot read is a
`CheckpointError`. Pruning keeps the last good checkpoint whatever its age. A guard that
trips for `patience` steps in a row stops the run with one line saying why; `out_dir/final` is
then the last good checkpoint's model and `out_dir/collapse.json` records the collapse, so that
the next run (with other settings, say a lower lr) resumes from the last good checkpoint and
deletes the later ones, not from the collapsed weights.

Policy ids: a hash chain over the settings that shaped the weights (the start model, then
each update's settings), recorded with the version on every rollout and dev-evaluation folder
beside a hash of the rollout settings. A folder is reused (a resumed step finishes only its
missing rollouts) only when the settings match and the weights that made it are the learner's
or, for a step's rollouts, one of its last `max_staleness` versions (the trainer state keeps
those ids); one made by other weights or settings is discarded with one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import shutil
import statistics
import sys
import time
from collections import defaultdict, deque
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from wideseek.errors import WideseekError
from wideseek.io import atomic_write_text
from wideseek.llm.engine import Engine
from wideseek.llm.weight_push import WeightPushError
from wideseek.train import checkpoints as ckpt
from wideseek.train.dev_eval import metric_names
from wideseek.train.rl.advantages import is_flat
from wideseek.train.rl.ahead import SamplingAhead
from wideseek.train.rl.batch import StepBatch, build_batch
from wideseek.train.rl.config import (
    MEASURED,
    RECIPE,
    ROLLOUT,
    RLConfig,
    digest,
    policy_after,
    settings_of,
)
from wideseek.train.rl.logprobs import sequence_logprobs
from wideseek.train.rl.loss import policy_loss, token_weights
from wideseek.train.rl.processes import WAIT_FOR_MAIN, LearnerProcesses
from wideseek.train.rl.remote import RemotePolicy
from wideseek.train.rl.rewards import CompositeReward, build_reward
from wideseek.train.rl.samples import AgentSample
from wideseek.train.rl.task_selection import (
    PASS_RATES,
    PassRates,
    replacement_tasks,
    select_pool,
)
from wideseek.train.trainable import Trainable, load_trainable, write_trained
from wideseek.train.training_card import TrainingCard
from wideseek.types import Failure, Task, Trajectory

T = TypeVar("T")
COLLAPSE = "collapse.json"
STAMP = "policy.json"  # in a rollout / dev-eval folder: the weights and settings that made it


class CollapseError(WideseekError, RuntimeError):
    """A collapse guard tripped: training stopped at the last good checkpoint."""


def step_tasks(pool: Sequence[Task], step: int, per_step: int, seed: int) -> list[Task]:
    """The tasks of `step` (0-based): a seeded shuffle of the pool, cycled, `per_step` at a
    time."""
    order = list(range(len(pool)))
    random.Random(seed).shuffle(order)
    start = step * per_step
    return [pool[order[(start + i) % len(pool)]] for i in range(per_step)]


def metric_keys(config: RLConfig, reward_terms: Sequence[str]) -> list[str]:
    """The keys of every metrics row of a run with `config` (module docstring)."""
    dev = [f"dev_{k}" for k in metric_names(config.eval)] if config.eval_every else []
    return [
        "step", "policy_version", "rollouts", "rollouts_kept", "rollouts_dropped", "flat_groups",
        "reward_mean", "reward_std", *(f"reward_{s}" for s in config.suites), *reward_terms,
        "advantage_mean", "advantage_std", "loss", "lr", "grad_norm", "trained_agents",
        "trained_tokens", "entropy", "clip_frac", "dual_clip_frac", "ratio_mean", "approx_kl",
        "early_stopped", "staleness",
        "subagents_per_rollout", "response_tokens", *(f"fail_{f.value}" for f in Failure),
        "rollout_s", "update_s", "eval_s", "guard", *dev,
        *(["resampled_groups", "replaced_groups"] if config.select.resample_flat else []),
    ]  # fmt: skip


def _mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.pstdev(values)


def note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr)


class RLTrainer:
    """The loop of the module docstring; one instance per run."""

    def __init__(
        self,
        config: RLConfig,
        show_progress: bool = True,
        reward: CompositeReward | None = None,
    ) -> None:
        """`reward`: weighted `(task, trajectory) -> float` terms of one's own (None: the
        shaped reward `config.shaping` describes)."""
        import torch
        from accelerate import Accelerator
        from accelerate.utils import (
            DistributedDataParallelKwargs,
            InitProcessGroupKwargs,
            set_seed,
        )

        from wideseek.llm.local import LocalEngine
        from wideseek.world import load_world
        from wideseek.world.suites import suite_tasks

        self.config = config
        self.out = Path(config.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.show_progress = show_progress
        self.world = load_world(config.world)
        tasks = {s: suite_tasks(self.world, s, config.split) for s in config.suites}
        if not any(tasks.values()):
            raise WideseekError(f"no {'/'.join(config.suites)} tasks in split {config.split}")
        self.pool = select_pool(tasks, config.select)  # before the model: a bad list fails fast
        self.suite_of = {t.id: s for s, ts in tasks.items() for t in ts}
        self.reward = reward or build_reward(config.shaping)
        self.keys = metric_keys(config, self.reward.names())
        set_seed(config.seed)
        # buffers (rotary frequencies) are never trained: no broadcast at each forward, which
        # would make every forward a collective and the processes' forward counts must match
        handlers = [InitProcessGroupKwargs(timeout=WAIT_FOR_MAIN),
                    DistributedDataParallelKwargs(broadcast_buffers=False)]  # fmt: skip
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available(), kwargs_handlers=handlers)
        self.procs = LearnerProcesses(self.accelerator)
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
        self.remote: RemotePolicy | None = None
        self.engine: LocalEngine | None = None
        self.ahead: SamplingAhead | None = None  # the next step's rollouts, sampling already
        local = config.rollout_engine.kind == "local"
        if self.procs.main and local:  # only the main process samples
            self.engine = LocalEngine(self.trainable.resolved, loaded=loaded, model_name="policy")
        elif self.procs.main:
            self.remote = RemotePolicy(
                config.rollout_engine, self.out, self.trainable.tokenizer,
                config.agent.context_length, self.trainable.is_lora,
            )  # fmt: skip
        self.step = 0
        self.tripped: dict[str, int] = defaultdict(int)
        self.outcomes: deque[float] = deque(maxlen=config.guards.outcome_window)
        self.last_good: int | None = None
        self.last_reward: float | None = None  # the last step's mean reward, for the card
        start = config.model_dump(mode="json", include={"model", "lora", "dtype", "seed"})
        self.policy = digest("start", start)
        self.history: dict[int, str] = {0: self.policy}  # version -> policy id, recent ones
        self.rollout_settings = digest(settings_of(config, include=ROLLOUT))
        self.eval_settings = digest(config.eval.model_dump(mode="json"))

    # -- checkpoints ---------------------------------------------------------------------------

    def _undo_collapse(self) -> None:
        """After a collapse: delete the checkpoints after the last good one, so the run resumes
        from it (`collapse.json` says which)."""
        marker = self.out / COLLAPSE
        if not marker.exists():
            return
        info = json.loads(marker.read_text())
        good = info.get("last_good")
        for path in ckpt.checkpoints(self.out):
            if good is None or ckpt.checkpoint_step(path) > good:
                shutil.rmtree(path)
        where = f"checkpoint-{good}" if good is not None else "the start model"
        note(f"the run collapsed at step {info['step']} ({info['why']}); resuming from {where}")
        marker.unlink()

    def resume(self) -> None:
        if self.procs.main:
            self._undo_collapse()
        self.procs.wait()
        found = ckpt.checkpoints(self.out)
        if not found:
            if self.procs.main:  # rows of a run that saved nothing
                ckpt.truncate_metrics(self.out / ckpt.METRICS, -1)
            return
        state = ckpt.restore(self.accelerator, found[-1])
        self.step, self.last_good = state["step"], state.get("last_good")
        self.tripped = defaultdict(int, state.get("tripped", {}))
        self.outcomes.extend(state.get("outcomes", []))
        # a checkpoint from before policy ids: no folder can match it
        self.policy = state.get("policy") or digest("unknown", str(found[-1]))
        self.history = {int(v): p for v, p in state.get("history", {}).items()}
        self.history[self.step] = self.policy
        if self.procs.main:
            ckpt.truncate_metrics(self.out / ckpt.METRICS, self.step)

    def healthy(self) -> bool:
        """No guard is tripping: a checkpoint saved now is a good one."""
        return not any(self.tripped.values())

    def state(self, good: bool) -> dict[str, Any]:
        """The trainer state a checkpoint of the current step records."""
        return {"step": self.step, "good": good, "last_good": self.last_good,
                "tripped": dict(self.tripped), "outcomes": list(self.outcomes),
                "policy": self.policy, "history": self.history}  # fmt: skip

    def write_model(self, path: Path) -> None:
        write_trained(self.trainable, self.accelerator.unwrap_model(self.model), path, self.card())

    def save(self) -> Path:
        """A checkpoint of the current step; good when no guard is tripping. Pruning keeps the
        last good one: a rollback needs it."""
        good = self.healthy()
        if good:
            self.last_good = self.step
        return ckpt.save_checkpoint(
            self.accelerator, self.out, self.step, self.write_model, self.state(good),
            self.config.keep_checkpoints, protect={self.last_good},
        )  # fmt: skip

    def card(self) -> TrainingCard:
        """The saved model's README.md: the settings that made it and how far it got."""
        recipe = self.config.model_dump(include=RECIPE)
        return TrainingCard("rl", recipe, {"steps": self.step, "last reward": self.last_reward})

    def _fresh_dir(
        self,
        path: Path,
        settings: str,
        sampler: int,
        staleness: int = 0,
        learner: int | None = None,
    ) -> int:
        """Keep `path` (a run folder a resumed step finishes) only if these settings (a digest)
        and weights at most `staleness` versions older than the learner's (version `learner`,
        None: the current one) made it; else discard it, saying so, and stamp it as
        `sampler`'s. Returns the version that made it."""
        learner = self.step if learner is None else learner
        stamp = {"policy": self.history[sampler], "version": sampler, "settings": settings}
        if path.exists():
            try:
                made = json.loads((path / STAMP).read_text())
            except (OSError, ValueError):
                made = None
            recent = {p: v for v, p in self.history.items() if learner - v <= staleness}
            fits = isinstance(made, dict) and made.get("settings") == settings
            if fits and made["policy"] in recent:
                return recent[made["policy"]]
            note(f"{path} was made by other weights or settings ({made} vs {stamp}); discarded")
            shutil.rmtree(path)
        path.mkdir(parents=True)
        atomic_write_text(path / STAMP, json.dumps(stamp))
        return sampler

    def sampler(self, staleness: int) -> int:
        """The version of the weights that samples now, at most `staleness` updates behind the
        learner: the learner's own model, or a remote engine that gets the current weights
        pushed when it lags more. A refused push is `WeightPushError`."""
        if self.remote is None:
            return self.step
        served = self.remote.served
        if served is None or self.step - served > staleness:
            started = time.time()
            self.model.eval()
            self.remote.push(self.step, self.write_model)
            note(f"pushed version {self.step} to {self.remote.settings.base_url} "
                 f"({time.time() - started:.1f}s)")  # fmt: skip
        assert self.remote.served is not None
        return self.remote.served

    def _with_engine(
        self, run: Callable[[Engine], Coroutine[Any, Any, T]]
    ) -> Coroutine[Any, Any, T]:
        """`run(engine)` with the sampling engine, chosen now: the shared local one, or an HTTP
        engine on the version served now, closed after in the event loop that awaits it."""
        if self.remote is None:
            assert self.engine is not None
            return run(self.engine)
        engine = self.remote.engine()

        async def closing() -> T:
            async with engine:
                return await run(engine)

        return closing()

    # -- one step ------------------------------------------------------------------------------

    def rollouts(
        self,
        tasks: Sequence[Task],
        run_dir: Path,
        *,
        trials: int | None = None,
        seed: int | None = None,
        suite: str | None = None,
        version: int | None = None,
        step: int | None = None,
    ) -> Coroutine[Any, Any, list[Trajectory]]:
        """`trials` rollouts (None: group_size) of each task into `run_dir` by the weights of
        `version` (None: the learner's; a remote engine must serve them), for step `step`
        (0-based; None: the current one), sampling with `seed` (None: the step's), through the
        one world entry (`runtime.world_run.run_world`) under the agent's own limits
        (`limits=None`: the run file's `agent` section is what the rollouts play under).
        Everything is fixed when called; the awaitable reads no trainer state (it may run on
        another thread's loop, `ahead.SamplingAhead`)."""
        from wideseek.runtime.world_run import run_world

        step = self.step if step is None else step
        # top_p 1, top_k 0 whatever the model's generation config says (a vLLM or SGLang server
        # would take its top_k from there): the update computes untruncated
        # logprobs, so truncated sampling would make every importance ratio wrong
        agent = self.config.agent.model_copy(
            update={"mode": self.config.mode, "temperature": self.config.temperature,
                    "seed": self.config.seed + step if seed is None else seed,
                    "top_p": 1.0, "top_k": 0}
        )  # fmt: skip
        if self.engine is not None:
            self.model.eval()  # the local engine samples with the learner's own model
        version = self.step if version is None else version
        extra = {"policy_version": version, "policy": self.history[version]}

        async def run(engine: Engine) -> list[Trajectory]:
            done = await run_world(
                self.world, {"rollouts": list(tasks)}, run_dir, split=self.config.split,
                name=suite or f"rl-step-{step + 1}", agent=agent, limits=None,
                engine=engine, config=None, trials=trials or self.config.group_size,
                concurrency=self.config.concurrency, extra=extra,
                show_progress=self.show_progress,
            )  # fmt: skip
            return done.trajectories()

        return self._with_engine(run)

    def update(
        self, batch: list[tuple[list[AgentSample], float]], rollouts: int | None = None
    ) -> dict[str, float]:
        """One optimizer step over (a rollout's agent samples, its advantage) pairs; B =
        `rollouts` (None: the pairs given). Every process is given the whole batch and trains
        on its share of the samples (module docstring, data parallel)."""
        # 1) the token weights 1/(B·A_i·N_ia) over the whole step, whichever process trains
        generated = [[s.n_generated for s in samples] for samples, _ in batch]
        weights = token_weights(generated, rollouts)
        items = [(sample, advantage, weight)
                 for (samples, advantage), agent_weights in zip(batch, weights, strict=True)
                 for sample, weight in zip(samples, agent_weights, strict=True)]  # fmt: skip
        # 2) this process's share; a process left without one backpropagates a zero loss, as
        # DDP needs every process's backward to all-reduce
        mine = self.procs.shard([len(sample.input_ids) for sample, _, _ in items])
        self.model.train()
        self.optimizer.zero_grad()
        figures: list[tuple[float, dict[str, float]]] = []  # (loss, stats) per sample
        shortest = min(range(len(items)), key=lambda i: len(items[i][0].input_ids))
        for n, i in enumerate(mine or [shortest]):
            sample, advantage, weight = items[i]
            last = n == len(mine) - 1 or not mine
            # gradients are all-reduced on the last backward only; DDP averages them over the
            # N processes, so each loss is scaled by N: the sum over every sample, as in one
            with contextlib.nullcontext() if last else self.accelerator.no_sync(self.model):
                loss, stats = self.sample_loss(sample, advantage, weight if mine else 0.0)
                self.accelerator.backward(loss * self.procs.count)
            if mine:
                figures.append((float(loss.detach()), stats))
        # 3) the step, on every process (the gradients are the same everywhere)
        norm = self.accelerator.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad()
        if self.engine is not None:
            self.engine.weights_changed()  # its cached keys/values are the old weights'
        # 4) the figures of every process's samples
        figures = self.procs.gather(figures)
        stats: dict[str, list[float]] = defaultdict(list)
        for _, sample_stats in figures:
            for key, value in sample_stats.items():
                stats[key].append(value)
        stopped = stats.pop("early_stopped", [])
        row = {k: statistics.fmean(v) for k, v in stats.items()}
        row["early_stopped"] = float(sum(stopped))  # agent samples whose loss was dropped
        # the weighted objective: the sum over every token and agent
        row["loss"] = sum(loss for loss, _ in figures)
        row["lr"] = float(self.optimizer.param_groups[0]["lr"])
        row["grad_norm"] = float(norm)
        row["trained_agents"] = float(len(items))
        row["trained_tokens"] = float(sum(map(sum, generated)))
        return row

    def sample_loss(
        self, sample: AgentSample, advantage: float, weight: float
    ) -> tuple[Any, dict[str, float]]:
        """One agent sample's weighted clipped loss (a 0-d tensor) and its statistics."""
        import torch

        device = self.accelerator.device
        ids = torch.tensor([sample.input_ids], device=device)  # (1, L)
        mask = torch.tensor([sample.response_mask[1:]], device=device)  # (1, L-1)
        new, entropy = sequence_logprobs(self.model, ids, self.config.temperature, mask)
        old = torch.tensor([sample.old_logprobs[1:]], device=device)  # (1, L-1)
        w = torch.full_like(old, weight)
        loss, stats = policy_loss(new, old, torch.tensor([advantage], device=device), w, mask,
                                  self.config.clip, self.config.early_stop_ratio)  # fmt: skip
        if entropy is not None:
            stats["entropy"] = entropy
        return loss, stats

    def run_step(self) -> dict[str, Any]:
        """Steps 1-4 of the module docstring: the batch from the main process, the update on
        every process."""
        pairs, rollouts, figures = self.procs.from_main(self.sample_step)
        started = time.time()
        update = self.update(pairs, rollouts) if pairs else {}
        self.policy = policy_after(self.policy, self.config)
        return {**figures, **update, "update_s": round(time.time() - started, 2)}

    def sample_step(self) -> tuple[list[tuple[list[AgentSample], float]], int, dict[str, Any]]:
        """Steps 1-3 (the main process): the kept rollouts' (agent samples, advantage) pairs,
        B, and the step's figures that need no update."""
        cfg = self.config
        tasks = step_tasks(self.pool, self.step, cfg.tasks_per_step, cfg.seed)
        run_dir = self.out / "rollouts" / f"step-{self.step + 1}"
        started = time.time()
        ahead, self.ahead = self.ahead, None
        if ahead is not None and ahead.step == self.step:  # sampled during the last update
            trajectories, made = ahead.result(), ahead.made
        else:
            sampler = self.sampler(cfg.max_staleness)
            made = self._fresh_dir(run_dir, self.rollout_settings, sampler, cfg.max_staleness)
            # a reused folder made by older weights is finished by the current sampler: every
            # trajectory carries its own sampling logprobs, so the ratios stay right either way
            trajectories = asyncio.run(self.rollouts(tasks, run_dir, version=sampler))
        resampling: dict[str, int] = {}
        if cfg.select.resample_flat:
            trajectories, resampling = self.replace_flat_groups(tasks, trajectories, run_dir)
        rollout_s = time.time() - started  # the learner's wait: with rollouts_ahead, the rest
        batch = build_batch(trajectories, self.reward, cfg.credit, lambda t: self.suite_of[t.id])
        if cfg.rollouts_ahead and self.step + 1 < cfg.steps:
            self.ahead = self.sample_ahead(self.step + 1)
        pairs = [(r.samples, r.advantage) for r in batch.kept]
        figures = {
            **self.rollout_figures(batch),
            "staleness": self.step - made,
            **resampling,
            "rollout_s": round(rollout_s, 2),
        }
        return pairs, batch.batch_size(cfg.normalise_over), figures

    def sample_ahead(self, step: int) -> SamplingAhead:
        """Step `step`'s rollouts (0-based: the next one) started now on the remote engine, to
        sample while the current step's update runs. They are trained on by version `step`, so
        the server must serve a version at most `max_staleness` behind it: the current weights
        are pushed now if it lags more (nothing is in flight then: this step's rollouts are in,
        the next ones not started)."""
        cfg = self.config
        sampler = self.sampler(cfg.max_staleness - 1)
        run_dir = self.out / "rollouts" / f"step-{step + 1}"
        made = self._fresh_dir(run_dir, self.rollout_settings, sampler, cfg.max_staleness, step)
        tasks = step_tasks(self.pool, step, cfg.tasks_per_step, cfg.seed)
        return SamplingAhead(step, made, self.rollouts(tasks, run_dir, version=sampler, step=step))

    def flat(self, group: Sequence[Trajectory]) -> bool:
        """Every rollout of the group got the same reward: its advantages are all 0."""
        return is_flat([self.reward(t.task, t) for t in group])

    def replace_flat_groups(
        self, tasks: Sequence[Task], trajectories: list[Trajectory], run_dir: Path
    ) -> tuple[list[Trajectory], dict[str, int]]:
        """The step's groups with its flat ones replaced by other tasks' non-flat groups, at
        most `select.resample_flat` replacement groups tried, in rounds of as many as there
        are flat groups left (module docstring, step 2); and the counts for the metrics."""
        groups: dict[str, list[Trajectory]] = {t.id: [] for t in tasks}
        for trajectory in trajectories:
            groups[trajectory.task.id].append(trajectory)
        flat = [task_id for task_id, group in groups.items() if self.flat(group)]
        candidates = replacement_tasks(self.pool, set(groups), self.step, self.config.seed)
        limit = min(self.config.select.resample_flat, len(candidates))
        tried = replaced = rounds = 0
        while flat and tried < limit:
            chosen = candidates[tried : tried + min(len(flat), limit - tried)]
            tried, rounds = tried + len(chosen), rounds + 1
            version = self.sampler(self.config.max_staleness)
            new = asyncio.run(
                self.rollouts(chosen, run_dir / f"resample-{rounds}", version=version)
            )
            for task in chosen:
                group = [t for t in new if t.task.id == task.id]
                if not self.flat(group):
                    del groups[flat.pop(0)]
                    groups[task.id] = group
                    replaced += 1
        kept = [t for group in groups.values() for t in group]
        return kept, {"resampled_groups": tried, "replaced_groups": replaced}

    # -- the task pool -------------------------------------------------------------------------

    def pass_rate_pool(self) -> list[Task]:
        """The pool narrowed to `select.pass_rate`'s window. The rates are the start model's:
        measured at step 0 unless this run measured them already under the same settings, and
        read back, never re-measured, once training has begun."""
        window = self.config.select.pass_rate
        assert window is not None
        settings = digest(settings_of(self.config, include=MEASURED), window.samples)
        rates = PassRates.read(self.out)
        if self.step == 0:
            if rates is None or rates.settings != settings or rates.missing(self.pool):
                rates = self.measure_pass_rates(settings, window.samples)
        elif rates is None or rates.missing(self.pool):
            missing = "none" if rates is None else ", ".join(rates.missing(self.pool)[:3])
            raise WideseekError(
                f"{self.out / PASS_RATES}: the start model's pass rates (measured before step 1) "
                f"are missing for {missing}; this run is at step {self.step} and cannot measure "
                "them again: use a new out_dir, or drop select.pass_rate"
            )
        kept = rates.in_window(self.pool, window)
        note(
            f"{len(kept)} of {len(self.pool)} tasks solved within [{window.min}, {window.max}] "
            f"of {rates.samples} rollouts by the start model ({self.out / PASS_RATES})"
        )
        if not kept:
            raise WideseekError(
                f"select.pass_rate: no task in the window [{window.min}, {window.max}] (see "
                f"{self.out / PASS_RATES}); widen it or choose other tasks"
            )
        return kept

    def measure_pass_rates(self, settings: str, samples: int) -> PassRates:
        """`samples` rollouts of every pool task by the current (start) weights, into
        out_dir/pass-rate/ (a crash resumes it), their outcomes into out_dir/pass-rates.json."""
        run_dir = self.out / "pass-rate"
        self._fresh_dir(run_dir, settings, self.sampler(0))
        note(f"measuring the start model's pass rate on {len(self.pool)} tasks x {samples}")
        # a seed no step uses (steps sample with seed + step, step >= 0)
        seed = self.config.seed - 1
        run = self.rollouts(self.pool, run_dir, trials=samples, seed=seed, suite="rl-pass-rate")
        outcomes: dict[str, list[float]] = defaultdict(list)
        for trajectory in asyncio.run(run):
            outcomes[trajectory.task.id].append(self.reward.outcome.fn(trajectory.task, trajectory))
        rates = PassRates(settings=settings, samples=samples, outcomes=dict(outcomes))
        rates.write(self.out)
        return rates

    def rollout_figures(self, batch: StepBatch) -> dict[str, Any]:
        """The step's figures that need no update: rewards, advantages, rollouts, failures."""
        rollouts = batch.rollouts
        trajectories = [r.trajectory for r in rollouts]
        totals = [r.reward.total for r in rollouts]
        row: dict[str, Any] = {"policy_version": self.step, "rollouts": len(rollouts)}
        row["rollouts_kept"] = len(batch.kept)
        row["rollouts_dropped"] = len(rollouts) - len(batch.kept)
        row["flat_groups"] = batch.flat_groups / max(batch.groups, 1)
        row["reward_mean"], row["reward_std"] = _mean_std(totals)
        for suite in self.config.suites:
            row[f"reward_{suite}"] = _mean_std([r.reward.total for r in rollouts
                                                if r.suite == suite])[0]  # fmt: skip
        for name in self.reward.names():
            row[name] = _mean_std([r.reward.values[name] for r in rollouts])[0]
        row["advantage_mean"], row["advantage_std"] = _mean_std([r.advantage for r in batch.kept])
        multi = [t for t in trajectories if t.mode == "multi"]
        row["subagents_per_rollout"] = _mean_std([len(t.subagents) for t in multi])[0]
        lengths = [turn.usage.completion_tokens for t in trajectories for _, turn in t.iter_turns()]
        row["response_tokens"] = _mean_std(lengths)[0]
        for kind in Failure:
            counts = [t.failure_counts().get(kind.value, 0) for t in trajectories]
            row[f"fail_{kind.value}"] = _mean_std(counts)[0]
        return row

    # -- evaluation ----------------------------------------------------------------------------

    def evaluate(self) -> dict[str, Any]:
        """The dev figures of the current weights, through the shared engine."""
        from wideseek.train.dev_eval import evaluate_engine

        run_dir = self.out / "dev-eval" / f"step-{self.step}"
        started = time.time()
        self._fresh_dir(run_dir, self.eval_settings, self.sampler(0))
        self.model.eval()
        settings = self.config.eval
        result = asyncio.run(
            self._with_engine(lambda engine: evaluate_engine(engine, settings, run_dir, self.world))
        )
        figures = {f"dev_{k}": result.get(k) for k in metric_names(self.config.eval)}
        return {**figures, "eval_s": round(time.time() - started, 2)}

    def eval_due(self) -> bool:
        every = self.config.eval_every
        return bool(every) and (self.step % every == 0 or self.step == self.config.steps)

    def log(self, figures: dict[str, Any]) -> dict[str, Any]:
        row = dict.fromkeys(self.keys) | {"step": self.step} | figures
        if set(row) != set(self.keys):  # a figure without a key breaks the one-schema promise
            raise AssertionError(f"metrics keys {sorted(set(row) - set(self.keys))} unknown")
        ckpt.append_metrics(self.out, row)
        return row

    # -- guards --------------------------------------------------------------------------------

    def check_guards(self, row: dict[str, Any]) -> str | None:
        """Why the run must stop (a guard tripped `patience` steps in a row), or None."""
        g = self.config.guards
        reward, flat = row["reward_mean"], row["flat_groups"]
        subagents = row["subagents_per_rollout"] or 0.0
        self.outcomes.append(row["outcome"])
        outcome = statistics.fmean(self.outcomes)
        checks = {
            "reward": (g.min_reward is not None and reward <= g.min_reward,
                       f"mean reward {reward:.3f} <= {g.min_reward}"),
            "outcome": (g.min_outcome is not None and outcome <= g.min_outcome,
                        f"mean outcome {outcome:.3f} over the last {len(self.outcomes)} steps "
                        f"<= {g.min_outcome}"),
            "subagents": (g.min_subagents is not None and self.config.mode == "multi"
                          and subagents <= g.min_subagents,
                          f"subagents per rollout {subagents:.2f} <= {g.min_subagents}"),
            "flat": (g.max_flat_groups is not None and flat >= g.max_flat_groups,
                     f"{flat:.0%} of groups all-equal (no learning signal)"),
        }  # fmt: skip
        why = None
        for name, (tripped, text) in checks.items():
            self.tripped[name] = self.tripped[name] + 1 if tripped else 0
            if self.tripped[name] >= g.patience and why is None:
                why = f"{text} for {self.tripped[name]} steps"
        return why

    def train(self) -> Path:
        """The run, on every process (module docstring); the main one evaluates and logs."""
        main = self.procs.main
        self.resume()
        if self.config.select.pass_rate is not None:
            self.pool = self.procs.from_main(self.pass_rate_pool)
        if self.step == 0 and self.config.eval_every and main:
            self.log(self.evaluate())  # the start model, the figure every later one stands by
        try:
            self.run_steps()
        finally:  # a run stopped early: the rollouts sampled ahead stop too (their folder stays)
            if self.ahead is not None:
                self.ahead.cancel()
                self.ahead = None
        final = self.out / ckpt.FINAL
        if main:
            ckpt.write_final(self.out, self.write_model, self.state(self.healthy()))
        self.procs.wait()
        return final

    def run_steps(self) -> None:
        """Steps until `config.steps` (module docstring, steps 1-5)."""
        main = self.procs.main
        while self.step < self.config.steps:
            row = self.step_or_keep_state()
            self.step += 1
            self.remember(self.policy)
            self.last_reward = row["reward_mean"]
            why = self.check_guards(row)  # the same row, so the same verdict, everywhere
            if why is not None:
                if main:
                    self.log({**row, "guard": why})
                self.roll_back(why)
            if self.eval_due() and main:  # before the checkpoint: a crash re-runs it
                if self.ahead is not None:  # evaluating pushes: none of its versions in flight
                    self.ahead.wait()
                row |= self.evaluate()
            if main:
                self.log(row)
            if self.step % self.config.save_every == 0 or self.step == self.config.steps:
                self.save()

    def close(self) -> None:
        """Tear the process group down (several processes): a gloo group left to interpreter
        exit aborted a process now and then (train/sft.py)."""
        if self.procs.count > 1:
            self.accelerator.end_training()

    def step_or_keep_state(self) -> dict[str, Any]:
        """`run_step`, except that a server refusing the new weights stops the run with the
        weights trained so far in a checkpoint: the run resumes there once the server is
        fixed."""
        try:
            return self.run_step()
        except WeightPushError as e:  # every process: from_main raises it everywhere
            if self.step == 0:
                raise WeightPushError(f"{e}; nothing trained yet") from None
            saved = ckpt.checkpoint_dir(self.out, self.step)
            if not self.procs.from_main(saved.exists):
                self.save()
            self.procs.wait()  # the main process's writes are done before any process exits
            raise WeightPushError(
                f"{e}; the weights of step {self.step} are kept in {saved}: fix the server "
                "and run again (it resumes there)"
            ) from None

    def remember(self, policy: str) -> None:
        """The current version's policy id, and only the ids that a folder may still be
        reused under (`max_staleness`) or that a remote engine still serves."""
        self.history[self.step] = policy
        keep = self.step - self.config.max_staleness
        served = self.remote.served if self.remote is not None else None
        self.history = {v: p for v, p in self.history.items() if v >= keep or v == served}

    def roll_back(self, why: str) -> NoReturn:
        """Every process: the main one records the collapse and puts the last good checkpoint's
        model in final/; all stop with the same line."""
        final = self.out / ckpt.FINAL
        collapse = {"step": self.step, "why": why, "last_good": self.last_good}
        if self.procs.main:
            atomic_write_text(self.out / COLLAPSE, json.dumps(collapse))
        again = "change the settings (a lower lr, other tasks) and run again"
        if self.last_good is None:
            self.procs.wait()
            raise CollapseError(
                f"step {self.step}: {why}; no good checkpoint to roll back to ({again}: it "
                "starts over)"
            )
        good = ckpt.checkpoint_dir(self.out, self.last_good)
        if self.procs.main:
            state = ckpt.read_state(good)
            ckpt.write_final(
                self.out,
                lambda tmp: shutil.copytree(good / ckpt.MODEL, tmp, dirs_exist_ok=True),
                state,
            )
        self.procs.wait()
        raise CollapseError(
            f"step {self.step}: {why}; stopped, rolled back to checkpoint-{self.last_good} "
            f"({final}; {again}: it resumes from there)"
        )


def train_rl(config: RLConfig, show_progress: bool = True) -> Path:
    trainer = RLTrainer(config, show_progress)
    try:
        return trainer.train()
    finally:
        trainer.close()
