"""`train_rl(config)`: rollouts → rewards → shared advantages → per-agent samples → one update.

The task pool: the configured suites' tasks of the split, narrowed by the `select` section
(`task_selection`: task ids, the first N of each suite, and the pass-rate window, measured with
the start model before step 1 into `out_dir/pass-rates.json` (rollouts in `pass-rate/`) and
read back by a resumed run). A run of `steps: 0` stops there, after the start model's dev
figures: a preparation that every arm of an experiment then borrows
(`select.pass_rate.measured_in`), one session's work on a CPU.

Each step k (1-based):
1) takes the next `tasks_per_step` tasks of the pool (a seeded order, cycled; the position is
   the step number, so a resumed run continues with the same tasks);
2) runs `group_size` trials of each through the one world entry (`runtime.world_run.run_world`,
   the suite runner underneath) with the policy itself as the engine — the trainer's model
   object, shared, not copied, so every rollout of step k samples from exactly the weights
   after k-1 updates (policy version k-1): fully on-policy. With `rollout_engine` a vLLM or
   SGLang server samples instead, over the HTTP engine's token path (`remote.RemotePolicy`);
   with `rollout_engine.kind: llama.cpp`, llama.cpp samples in process from a GGUF copy of the
   current version, written when the version changed (`llamacpp_sampler.LlamaCppSampler`);
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
   is counted (`early_stopped`); with `kl_coef`, the loss adds that weight times the k3 KL
   to the frozen start model (`frozen_start`), weighted per token as the policy loss;
5) logs one metrics row, checks the collapse guards, evaluates on dev tasks every `eval_every`
   steps (`dev_eval.evaluate_engine` over the same shared engine, each request decoded alone
   when the evaluation is seeded, as `train eval` does), and checkpoints every
   `save_every` steps.

Metrics (`out_dir/metrics.jsonl`): one row per step, plus a step-0 row with the start model's
dev figures when `eval_every` is set; every row of a run has the same keys
(`metrics_row.metric_keys`), None where a figure was not measured at that step: policy version,
rollouts kept vs dropped, reward mean/std and per suite, each reward term, advantage mean/std of
the kept rollouts, loss, lr, grad norm, trained agents and tokens, entropy, clip fractions,
ratio, KL to the sampler (and with `kl_coef` to the start model, `kl_ref`), agent samples
early-stopped, the staleness of the step's rollouts (learner version - sampler version), failure
rates per kind, seconds in rollout (the learner's wait for them: with `rollouts_ahead`, only
what the previous update did not cover) / update / evaluation, when the logging process
started (`started`: a model card orders phases by it), the guard that tripped, the dev
figures (`dev_*`) of the weights after the step's update, and with `select.resample_flat` the
replacement groups tried (`resampled_groups`) and the flat groups they replaced
(`replaced_groups`).

Data parallel: launched as N processes (`accelerate launch --num_processes N` on GPUs,
`torchrun --nproc_per_node N` anywhere; CPU-only processes join over gloo), the main process
alone runs steps 1-3 (rollouts, rewards, batch) and every process gets the step's whole batch
(`processes.LearnerProcesses.from_main`). Step 4 is split (`update.policy_update`): every
process computes the token weights over the *whole* step (B and A_i are the step's, not a
shard's), trains on its share of the agent samples (`shard`, balanced by length), and DDP
all-reduces the gradients once, on each process's last backward (the others under `no_sync`);
as DDP averages, each loss is scaled by N, so the step's gradient is the sum over every sample,
as in one process. The metrics of the update are gathered from every process. The main process
alone writes (metrics, rollouts, dev evaluations, pushes, the model and trainer state); each
process saves its own RNG state into a checkpoint (accelerate), and a resumed run loads it
back.

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
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wideseek.errors import WideseekError
from wideseek.llm.engine import Engine
from wideseek.llm.weight_push import WeightPushError
from wideseek.train import checkpoints as ckpt
from wideseek.train.dev_eval import metric_names
from wideseek.train.rl.ahead import SamplingAhead
from wideseek.train.rl.collapse import CollapseError, CollapseGuards, roll_back, undo_collapse
from wideseek.train.rl.config import RECIPE, ROLLOUT, RLConfig, digest, policy_after, settings_of
from wideseek.train.rl.merged_sampler import MergedSampler
from wideseek.train.rl.metrics_row import metric_keys, metrics_row
from wideseek.train.rl.processes import WAIT_FOR_MAIN, LearnerProcesses
from wideseek.train.rl.remote import RemotePolicy
from wideseek.train.rl.rewards import CompositeReward, build_reward
from wideseek.train.rl.sampling import StepSampling
from wideseek.train.rl.task_selection import select_pool, step_tasks
from wideseek.train.rl.update import Batch, Learner, learner_optimizer, policy_update
from wideseek.train.trainable import Trainable, load_trainable, write_trained
from wideseek.train.training_card import TrainingCard

if TYPE_CHECKING:
    from wideseek.train.rl.llamacpp_sampler import LlamaCppSampler

__all__ = ["CollapseError", "RLTrainer", "metric_keys", "step_tasks", "train_rl"]


class RLTrainer(StepSampling):
    """The loop of the module docstring; one instance per run. The sampling side of a step
    (steps 1-3, the main process) is `sampling.StepSampling`; the update (step 4, every
    process) is `update.policy_update`."""

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
        self.started = round(time.time(), 3)
        set_seed(config.seed)
        # buffers (rotary frequencies) are never trained: no broadcast at each forward, which
        # would make every forward a collective and the processes' forward counts must match
        handlers = [InitProcessGroupKwargs(timeout=WAIT_FOR_MAIN),
                    DistributedDataParallelKwargs(broadcast_buffers=False)]  # fmt: skip
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available(), kwargs_handlers=handlers)
        self.procs = LearnerProcesses(self.accelerator)
        self.trainable: Trainable = load_trainable(config.model, lora=config.lora,
                                                   dtype=config.dtype)  # fmt: skip
        self.reference = self.frozen_start() if config.kl_coef else None
        optimizer = learner_optimizer(self.trainable.model, config)
        self.model, self.optimizer = self.accelerator.prepare(self.trainable.model, optimizer)
        policy = self.accelerator.unwrap_model(self.model)
        self.remote: RemotePolicy | None = None
        self.engine: LocalEngine | None = None
        self.merged: MergedSampler | None = None  # the engine's merged copy of a LoRA policy
        self.ahead: SamplingAhead | None = None  # the next step's rollouts, sampling already
        self.llama: LlamaCppSampler | None = None  # llama.cpp on each version's GGUF copy
        kind = config.rollout_engine.kind
        if self.procs.main and kind == "local":  # only the main process samples
            if config.rollout_engine.merged and self.trainable.is_lora:
                self.merged = MergedSampler(policy)
            loaded = (self.merged.model if self.merged else policy, self.trainable.tokenizer)
            # the resolved model, not the raw spec: "default" names no directory, and the
            # engine reads the model's recommended settings from it
            self.engine = LocalEngine(self.trainable.resolved, loaded=loaded, model_name="policy")
        elif self.procs.main and kind == "llama.cpp":
            from wideseek.runtime.world_run import NO_FLAGS, resolve_limits
            from wideseek.train.rl.llamacpp_sampler import LlamaCppSampler

            # its cells are allocated up front: the context the agents will plan for (the run
            # file's, else the model's recommendation), or a dev evaluation's if larger
            limits = resolve_limits(config.agent, NO_FLAGS, self.trainable.resolved.limits)
            context = max(limits["context_length"], config.eval.agent.get("context_length", 0))
            self.llama = LlamaCppSampler(
                policy, self.trainable.resolved, self.trainable.tokenizer, self.out,
                lora=self.trainable.is_lora, weights=config.rollout_engine.weights,
                context_length=context, seed=config.seed,
            )  # fmt: skip
        elif self.procs.main:
            self.remote = RemotePolicy(
                config.rollout_engine, self.out, self.trainable.tokenizer,
                config.agent.context_length, self.trainable.is_lora,
            )  # fmt: skip
        self.step = 0
        self.guards = CollapseGuards(config.guards.outcome_window)
        self.last_good: int | None = None
        self.last_reward: float | None = None  # the last step's mean reward, for the card
        start = config.model_dump(mode="json", include={"model", "lora", "dtype", "seed"})
        self.policy = digest("start", start)
        self.history: dict[int, str] = {0: self.policy}  # version -> policy id, recent ones
        # the world's hash is part of every measurement's settings: its pages decide what a
        # rollout reads (config.world is None for the shipped world, whatever it holds)
        world_hash = self.world.manifest.world_hash
        self.rollout_settings = digest(settings_of(config, include=ROLLOUT), world_hash)
        # a seeded evaluation decodes each request alone (`evaluate`); part of the settings,
        # so a folder decoded batched (before that) is not taken for one of these
        self.eval_alone = config.eval.agent.get("seed") is not None
        eval_settings = config.eval.model_dump(mode="json")
        # the engine that decodes them, when not the learner's own (ids from before it hold)
        if kind != "local":
            eval_settings["engine"] = config.rollout_engine.model_dump(
                mode="json", include={"kind", "weights"} if kind == "llama.cpp" else {"kind"}
            )
        self.eval_settings = digest(
            {**eval_settings, "each_request_alone": self.eval_alone}, world_hash
        )

    # -- the run -------------------------------------------------------------------------------

    def train(self) -> Path:
        """The run, on every process (module docstring); the main one evaluates and logs.
        Returns final/, or out_dir itself for a run of 0 steps (measured, not trained)."""
        main = self.procs.main
        self.resume()
        self.narrow_pool()
        if self.step == 0 and self.config.eval_every and main:
            self.log(self.evaluate())  # the start model, the figure every later one stands by
        if self.config.steps == 0:  # a preparation run: nothing to train, no final model
            self.procs.wait()
            return self.out
        try:
            self.run_steps()
        finally:  # a run stopped early: the rollouts sampled ahead stop too (their folder stays)
            if self.ahead is not None:
                self.ahead.cancel()
                self.ahead = None
        final = self.out / ckpt.FINAL
        if main:
            ckpt.write_final(self.out, self.write_model, self.state(self.guards.healthy()))
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
                roll_back(self.out, self.step, why, self.last_good, self.procs)
            if self.eval_due() and main:  # before the checkpoint: a crash re-runs it
                if self.ahead is not None:  # evaluating pushes: none of its versions in flight
                    self.ahead.wait()
                row |= self.evaluate()
            if main:
                self.log(row)
            if self.step % self.config.save_every == 0 or self.step == self.config.steps:
                self.save()

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

    def run_step(self) -> dict[str, Any]:
        """Steps 1-4 of the module docstring: the batch from the main process
        (`sample_step`), the update on every process."""
        pairs, rollouts, figures = self.procs.from_main(self.sample_step)
        started = time.time()
        update = self.update(pairs, rollouts) if pairs else {}
        self.policy = policy_after(self.policy, self.config)
        return {**figures, **update, "update_s": round(time.time() - started, 2)}

    def update(self, batch: Batch, rollouts: int | None = None) -> dict[str, float]:
        """One optimizer step over (a rollout's agent samples, its advantage) pairs; B =
        `rollouts` (None: the pairs given). Every process is given the whole batch and trains
        on its share of the samples (module docstring, data parallel)."""
        learner = Learner(self.accelerator, self.model, self.optimizer, self.procs,
                          self.reference)  # fmt: skip
        row = policy_update(batch, rollouts, learner, self.config)
        if self.engine is not None:
            self.engine.weights_changed()  # its cached keys/values are the old weights'
        return row

    def frozen_start(self) -> Any:
        """The start model, merged and frozen, on the learner's device: what `kl_coef` anchors
        the policy to (a resumed run's start is still `config.model`)."""
        from wideseek.llm.model_loading import load_causal_lm

        model = load_causal_lm(self.trainable.resolved, merge=True, dtype=self.trainable.dtype)
        return model.requires_grad_(False).eval().to(self.accelerator.device)

    def check_guards(self, row: dict[str, Any]) -> str | None:
        """Why the run must stop (a guard tripped `patience` steps in a row), or None."""
        return self.guards.check(row, self.config.guards, self.config.mode)

    def remember(self, policy: str) -> None:
        """The current version's policy id, and only the ids that a folder may still be
        reused under (`max_staleness`) or that a remote engine still serves."""
        self.history[self.step] = policy
        keep = self.step - self.config.max_staleness
        served = self.remote.served if self.remote is not None else None
        self.history = {v: p for v, p in self.history.items() if v >= keep or v == served}

    def close(self) -> None:
        """Free the llama.cpp sampler; tear the process group down (several processes): a gloo
        group left to interpreter exit aborted a process now and then (train/sft.py)."""
        if self.llama is not None:
            self.llama.close()
        if self.procs.count > 1:
            self.accelerator.end_training()

    # -- evaluation and metrics ----------------------------------------------------------------

    def evaluate(self) -> dict[str, Any]:
        """The dev figures of the current weights, through the shared engine."""
        from wideseek.train.dev_eval import evaluate_engine

        run_dir = self.out / "dev-eval" / f"step-{self.step}"
        started = time.time()
        # the start model's evaluation says what evaluated it, for other runs to take
        start = {"start": self.start_function()} if self.step == 0 else {}
        if start and self.config.eval_start_in and not run_dir.exists():
            self.take_start_evaluation(Path(self.config.eval_start_in), run_dir, start)
        self._fresh_dir(run_dir, self.eval_settings, self.sampler(0), **start)
        self.model.eval()
        settings = self.config.eval

        async def run(engine: Engine) -> dict[str, Any]:
            # seeded (greedy by default), as `train eval`: each request decoded alone, so the
            # figures do not move with what else is in flight (local engine; a server batches)
            alone = getattr(engine, "each_request_alone", None)
            with alone() if self.eval_alone and alone else contextlib.nullcontext():
                return await evaluate_engine(engine, settings, run_dir, self.world)

        result = asyncio.run(self._with_engine(run))
        figures = {f"dev_{k}": result.get(k) for k in metric_names(self.config.eval)}
        return {**figures, "eval_s": round(time.time() - started, 2)}

    def eval_due(self) -> bool:
        every = self.config.eval_every
        return bool(every) and (self.step % every == 0 or self.step == self.config.steps)

    def log(self, figures: dict[str, Any]) -> dict[str, Any]:
        row = metrics_row(self.keys, self.step, {**figures, "started": self.started})
        ckpt.append_metrics(self.out, row)
        return row

    # -- checkpoints ---------------------------------------------------------------------------

    def resume(self) -> None:
        if self.procs.main:
            undo_collapse(self.out)
        self.procs.wait()
        found = ckpt.checkpoints(self.out)
        if not found:
            if self.procs.main:  # rows of a run that saved nothing
                ckpt.truncate_metrics(self.out / ckpt.METRICS, -1)
            return
        state = ckpt.restore(self.accelerator, found[-1], frozen=self.trainable.frozen_weights)
        self.step, self.last_good = state["step"], state.get("last_good")
        self.guards.restore(state)
        # a checkpoint from before policy ids: no folder can match it
        self.policy = state.get("policy") or digest("unknown", str(found[-1]))
        self.history = {int(v): p for v, p in state.get("history", {}).items()}
        self.history[self.step] = self.policy
        if self.procs.main:
            ckpt.truncate_metrics(self.out / ckpt.METRICS, self.step)

    def state(self, good: bool) -> dict[str, Any]:
        """The trainer state a checkpoint of the current step records."""
        return {"step": self.step, "good": good, "last_good": self.last_good,
                "tripped": dict(self.guards.tripped), "outcomes": list(self.guards.outcomes),
                "start_entropy": self.guards.start_entropy,
                "policy": self.policy, "history": self.history,
                ckpt.FROZEN: self.trainable.frozen_weights}  # fmt: skip

    def write_model(self, path: Path) -> None:
        write_trained(self.trainable, self.accelerator.unwrap_model(self.model), path, self.card())

    def save(self) -> Path:
        """A checkpoint of the current step; good when no guard is tripping. Pruning keeps the
        last good one: a rollback needs it."""
        good = self.guards.healthy()
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


def train_rl(config: RLConfig, show_progress: bool = True) -> Path:
    trainer = RLTrainer(config, show_progress)
    try:
        return trainer.train()
    finally:
        trainer.close()
