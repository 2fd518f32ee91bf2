"""Supervised fine-tuning of a causal LM on token examples (agent turns, or raw pages).

Contract: `train_sft(config, examples, evaluate)` trains the model at `config.model` on
`examples` (token ids + labels, see sft_data.py; the loss is the token mean over labelled
positions, with logits computed only there: token_loss.py) and returns the directory of the
final model (HF format, tokenizer included).

- The loop runs on accelerate: a single CPU process here, or n data-parallel processes
  (`accelerate launch --multi_gpu` on GPUs; `torchrun`, CPU-only processes included): each
  process takes every n-th micro-batch, so a step covers n times the data and an epoch has
  1/n of the steps. Every process saves its part of a checkpoint (RNG state); the main one
  writes the model, metrics and evaluations. fp32 on CPU, bf16 via `mixed_precision` where
  the hardware has it.
- Cosine schedule with linear warm-up down to `min_lr_ratio * lr`; gradient accumulation.
- Checkpoints, metrics and final/ follow train/checkpoints.py's layout; the trainer state
  holds the step, the tokens seen and the data signature (what fixes the data order). A new
  run in the same `out_dir` resumes from the latest checkpoint exactly where it stopped (same
  data order, same weights as an uninterrupted run); a checkpoint saved for other data is a
  `CheckpointError`, unless `other_data: continue` and only the examples differ (remade
  on another machine): then the run goes on from its step over the new examples' batches,
  and the trainer state (`data_changes`) and the model's card say at which step. Only the
  newest `keep_checkpoints` are kept. final/ gets the trainer state
  too, so a finished run given again returns at once.
- `out_dir/metrics.jsonl`: one row per `log_every` optimizer steps (loss, lr, tokens), and one
  `{"eval": ...}` row per evaluation: `evaluate(model_dir, step) -> dict` is called every
  `eval_every` steps and at the end, on a freshly saved checkpoint.
- `restart_above_gb` (one process only): when the process's peak resident memory has passed
  it after a step (its second or later: a fresh heap over the limit would not be helped), the
  run saves a checkpoint and stops with `RestartToFreeMemory`; the command line then starts
  itself again and resumes there (train/heap.py: a long CPU run's heap only grows).

It knows nothing about agents: examples come in as token ids and labels.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import random
import time
from array import array
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from wideseek.errors import ConfigError
from wideseek.io import repair_torn_tail
from wideseek.llm.resolved_model import ResolvedModel
from wideseek.progress import run_progress
from wideseek.train import checkpoints as ckpt
from wideseek.train.checkpoints import CheckpointError
from wideseek.train.heap import RestartToFreeMemory, peak_resident_gb, release_free_heap
from wideseek.train.sft_data import IGNORE, SFTExample
from wideseek.train.token_loss import labelled_loss
from wideseek.train.trainable import load_trainable, write_trained
from wideseek.train.trainer_config import TrainerConfig
from wideseek.train.training_card import TrainingCard

Evaluate = Callable[[str, int], dict[str, Any]]
# SFTConfig fields that do not change the weights: left off a saved model's card
_NOT_RECIPE = {
    "model",
    "out_dir",
    "log_every",
    "save_every",
    "keep_checkpoints",
    "eval_every",
    "restart_above_gb",
    "other_data",
}


class SFTConfig(TrainerConfig):
    lr: float = Field(1e-3, gt=0, description="peak learning rate (cosine schedule)")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="cosine floor as a fraction of lr")
    warmup_steps: int = Field(50, ge=0, description="linear warm-up, in optimizer steps")
    epochs: float = Field(1.0, gt=0, description="passes over the examples (may be fractional)")
    batch_tokens: int = Field(8192, ge=64, description="padded tokens per micro-batch at most")
    grad_accum: int = Field(1, ge=1, description="micro-batches per optimizer step")
    max_length: int = Field(2048, ge=2, description="longer examples are skipped")
    log_every: int = Field(10, ge=1, description="metrics row every N optimizer steps")
    save_every: int = Field(
        200, ge=0, description="checkpoint every N optimizer steps (0: only when evaluating)"
    )
    mixed_precision: str = Field(
        "no", pattern="^(no|bf16|fp16)$", description="compute type: no | bf16 | fp16 (a GPU's)"
    )
    other_data: str = Field(
        "refuse",
        pattern="^(refuse|continue)$",
        description="a checkpoint saved for other examples (the same batching): refuse, or "
        "continue from its step on these examples (demonstrations remade on another machine "
        "can differ); the change is kept in the trainer state and the model's card",
    )
    restart_above_gb: float | None = Field(
        None,
        gt=0,
        description="one process: when its peak resident memory has passed this many GB, "
        "save a checkpoint and stop, and `wideseek train sft` restarts and resumes from it with "
        "a fresh heap (a CPU run's glibc heap only grows); None: never",
    )


def make_batches(examples: Sequence[SFTExample], batch_tokens: int, seed: int) -> list[list[int]]:
    """Length-bucketed batches of example indices, shuffled deterministically by seed.

    Sorting by length before cutting into batches keeps padding small; shuffling the batches
    keeps the order random. The same examples and seed always give the same batches.
    """
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].input_ids))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        n = len(examples[i].input_ids)
        if current and max(longest, n) * (len(current) + 1) > batch_tokens:
            batches.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, n)
    if current:
        batches.append(current)
    random.Random(seed).shuffle(batches)
    return batches


class MicroBatches:
    """The run's micro-batches in order, as example indices: global micro-batch g is batch
    g % per_epoch of epoch g // per_epoch, each epoch its own shuffle (`make_batches` with
    seed + epoch), made once when first asked for (the trainer and `train sft --plan` walk
    the same ones)."""

    def __init__(self, examples: Sequence[SFTExample], config: SFTConfig) -> None:
        self.examples, self.batch_tokens, self.seed = examples, config.batch_tokens, config.seed
        self._epoch, self._batches = 0, make_batches(examples, self.batch_tokens, self.seed)
        self.per_epoch = len(self._batches)

    def __getitem__(self, g: int) -> list[int]:
        epoch, offset = divmod(g, self.per_epoch)
        if epoch != self._epoch:  # the next epoch: only one kept
            self._epoch = epoch
            self._batches = make_batches(self.examples, self.batch_tokens, self.seed + epoch)
        return self._batches[offset]


def optimizer_steps(per_epoch: int, config: SFTConfig, processes: int = 1) -> int:
    """The run's optimizer steps: `epochs` over `per_epoch` micro-batches, `grad_accum` of
    them per process a step."""
    per_step = config.grad_accum * processes
    return max(1, math.ceil(per_epoch * config.epochs / per_step))


def collate(examples: Sequence[SFTExample], pad_id: int) -> dict[str, Any]:
    """Right-padded tensors: input_ids, labels (IGNORE on padding), attention_mask; (B, T)."""
    import torch

    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)  # (B, T)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)  # (B, T)
    mask = torch.zeros((len(examples), width), dtype=torch.long)  # (B, T)
    for row, e in enumerate(examples):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def _data_signature(
    config: SFTConfig, examples: Sequence[SFTExample], processes: int = 1
) -> dict[str, Any]:
    """What fixes the data order; a checkpoint resumed under another order would not be exact."""
    order = hashlib.sha256()  # the examples themselves, in order (a few MB/s would do)
    for e in examples:
        order.update(array("i", e.input_ids).tobytes() + b"|")
    signature = {
        "examples": len(examples),
        "tokens": sum(len(e.input_ids) for e in examples),
        "batch_tokens": config.batch_tokens,
        "grad_accum": config.grad_accum,
        "seed": config.seed,
        "order": order.hexdigest()[:16],
    }
    if processes > 1:  # absent for one process, so single-process checkpoints stay valid
        signature["processes"] = processes
    return signature


_STATE_KEYS = ("step", "tokens_seen")  # the trainer state: these, and the data signature
_EXAMPLES_KEYS = ("examples", "tokens", "order")  # what `other_data: continue` lets differ


def _same_data(
    path: Path, signature: dict[str, Any], other_examples: bool = False
) -> Callable[[dict[str, Any]], None]:
    """A `checkpoints.restore` check: the checkpoint was saved for this data order (with
    `other_examples`, for these batching settings, whatever the examples)."""

    def check(state: dict[str, Any]) -> None:
        saved = state.get("data")
        # checkpoints saved before the order was signed are checked on the rest
        wanted = signature if not isinstance(saved, dict) or "order" in saved else {
            k: v for k, v in signature.items() if k != "order"}  # fmt: skip
        if other_examples and isinstance(saved, dict):
            saved, wanted = _batching(saved), _batching(wanted)
        if saved != wanted:
            raise CheckpointError(
                f"{path}: saved for other data or batching ({state.get('data')} vs "
                f"{signature}); use a new out_dir"
            )

    return check


def _batching(signature: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in signature.items() if k not in _EXAMPLES_KEYS}


def _data_changes(state: dict[str, Any], signature: dict[str, Any]) -> list[dict[str, Any]]:
    """The state's record of the examples changing under a run, with one more entry when the
    examples it was saved for are not these (`other_data: continue`)."""
    changes = list(state.get(ckpt.DATA_CHANGES) or [])
    saved = state.get("data") if isinstance(state.get("data"), dict) else {}
    # only the keys it signed: a checkpoint from before the order was signed has no "order"
    if any(saved.get(k) != signature.get(k) for k in _EXAMPLES_KEYS if k in saved):
        changes.append({"step": state["step"], "from": state.get("data")})
    return changes


def _cpu_only_processes() -> bool:
    """True when launched as several processes (torchrun) on a host with no accelerator: only
    then does Accelerator need cpu=True to join them (gloo); without it each process would
    train alone, silently."""
    import torch

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    devices = getattr(torch, "accelerator", None) or torch.cuda  # torch.accelerator: >= 2.6
    return not devices.is_available()


def train_sft(
    config: SFTConfig,
    examples: Sequence[SFTExample],
    evaluate: Evaluate | None = None,
    show_progress: bool = True,
    *,
    resolved: ResolvedModel | None = None,
) -> Path:
    """Train (resuming from the latest checkpoint in out_dir); returns out_dir/final.
    `resolved`: `config.model` already resolved (the caller read its tokenizer)."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from transformers import get_cosine_with_min_lr_schedule_with_warmup

    examples = [e for e in examples if len(e.input_ids) <= config.max_length]
    if not examples:
        raise ValueError("no training examples (check the trajectories and max_length)")
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    accelerator = Accelerator(mixed_precision=config.mixed_precision, cpu=_cpu_only_processes())
    if config.restart_above_gb is not None and accelerator.num_processes > 1:
        raise ConfigError("restart_above_gb restarts one process; unset it for a parallel run")
    set_seed(config.seed)
    trainable = load_trainable(resolved or config.model, lora=config.lora, dtype=config.dtype)
    model, tokenizer = trainable.model, trainable.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    # 1) the schedule, in optimizer steps; each step takes grad_accum micro-batches per process
    batches = MicroBatches(examples, config)
    total_steps = optimizer_steps(batches.per_epoch, config, accelerator.num_processes)
    trained = [p for p in model.parameters() if p.requires_grad]  # a LoRA run: the adapter
    decay = [p for p in trained if p.ndim >= 2]  # matrices; not norms or biases
    no_decay = [p for p in trained if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.lr,
        betas=(0.9, 0.95),
    )
    scheduler = get_cosine_with_min_lr_schedule_with_warmup(
        optimizer, config.warmup_steps, total_steps, min_lr_rate=config.min_lr_ratio
    )
    # The scheduler is stepped by hand once per optimizer step, so it is only registered for
    # checkpointing, not prepared (a prepared one steps once per process).
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)

    # 2) resume: weights, optimizer, scheduler and RNG from the latest complete checkpoint
    signature = _data_signature(config, examples, accelerator.num_processes)
    metrics_path = out / ckpt.METRICS
    final = out / ckpt.FINAL
    other_examples = config.other_data == "continue"
    if (final / ckpt.TRAINER_STATE).exists():
        done = ckpt.read_state(final, _STATE_KEYS)
        _same_data(final, signature, other_examples)(done)
        if done["step"] == total_steps:
            accelerator.end_training()
            return final  # this run is complete already
    step, tokens_seen = 0, 0
    data_changes: list[dict[str, Any]] = []
    found = ckpt.checkpoints(out)
    if found:
        state = ckpt.restore(
            accelerator, found[-1], _STATE_KEYS,
            _same_data(found[-1], signature, other_examples), frozen=trainable.frozen_weights,
        )  # fmt: skip
        step, tokens_seen = state["step"], state["tokens_seen"]
        data_changes = _data_changes(state, signature)
        if accelerator.is_main_process:
            ckpt.truncate_metrics(metrics_path, step)
    first_step = step  # this process's: see restart_above_gb

    def trainer_state() -> dict[str, Any]:
        state = {"step": step, "tokens_seen": tokens_seen, "data": signature,
                 ckpt.FROZEN: trainable.frozen_weights}  # fmt: skip
        if data_changes:  # absent otherwise: an unchanged run's state stays as it was
            state[ckpt.DATA_CHANGES] = data_changes
        return state

    # the saved model's README.md: the settings that made it and how far it got
    recipe = config.model_dump(exclude=_NOT_RECIPE)
    last_loss: float | None = None

    def card() -> TrainingCard:
        progress = {"steps": step, "tokens": tokens_seen, "last loss": last_loss}
        if data_changes:
            steps = ", ".join(str(change["step"]) for change in data_changes)
            progress["examples remade after step"] = steps
        return TrainingCard("sft", recipe, progress)

    def write_model(path: Path) -> None:
        write_trained(trainable, accelerator.unwrap_model(model), path, card())

    def save_checkpoint() -> Path:
        """Called by every process (see checkpoints.save_checkpoint)."""
        return ckpt.save_checkpoint(
            accelerator, out, step, write_model, trainer_state(), config.keep_checkpoints
        )

    def log(row: dict[str, Any]) -> None:
        ckpt.append_metrics(out, row)

    def run_eval(model_dir: Path) -> None:
        result = evaluate(str(model_dir), step) if evaluate else {}
        log({"eval": {"step": step, "tokens_seen": tokens_seen, **result}})

    model.train()
    start = time.time()
    losses: list[float] = []
    progress = run_progress(disable=not show_progress or not accelerator.is_main_process)
    if accelerator.is_main_process:
        repair_torn_tail(metrics_path)  # a run killed mid-line, before any checkpoint
    with progress:
        bar = progress.add_task("sft", total=total_steps, completed=step)
        while step < total_steps:
            # 3) the micro-batches of step `step`, by global micro-batch index
            loss_sum, tokens = 0.0, 0
            for k in range(config.grad_accum):
                g = (step * config.grad_accum + k) * accelerator.num_processes
                g += accelerator.process_index
                batch = collate([examples[i] for i in batches[g]], pad_id)
                batch = {name: t.to(accelerator.device) for name, t in batch.items()}
                # gradients are synchronised across processes only on the last micro-batch
                last = k == config.grad_accum - 1
                with contextlib.nullcontext() if last else accelerator.no_sync(model):
                    loss = labelled_loss(model, batch)  # mean over labelled tokens
                    accelerator.backward(loss / config.grad_accum)
                loss_sum += float(loss.detach())
                tokens += int(batch["attention_mask"].sum())
            if accelerator.num_processes > 1:  # the step's loss and tokens over all processes
                totals = torch.tensor(
                    [loss_sum, tokens], dtype=torch.float64, device=accelerator.device
                )
                totals = accelerator.reduce(totals, reduction="sum")
                loss_sum = float(totals[0]) / accelerator.num_processes
                tokens = int(totals[1])
            tokens_seen += tokens
            # 4) the optimizer step
            accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            release_free_heap()  # see train/heap.py: the memory of a CPU run grew every step
            step += 1
            losses.append(loss_sum / config.grad_accum)
            last_loss = losses[-1]
            progress.update(bar, advance=1, description=f"sft loss {losses[-1]:.3f}")
            # 5) metrics, checkpoints, evaluation (the other processes wait at the next step)
            due_eval = evaluate is not None and config.eval_every and step % config.eval_every == 0
            due_save = config.save_every and step % config.save_every == 0
            # a fresh process past the limit in its first step would restart forever: not then
            limit, resident = config.restart_above_gb or 0.0, peak_resident_gb()
            restart = 0 < limit < resident and first_step + 2 <= step < total_steps
            if due_save or due_eval or restart:
                saved = save_checkpoint()
            if not accelerator.is_main_process:
                continue
            if step % config.log_every == 0 or step == total_steps or restart:
                row = {
                    "step": step,
                    "loss": sum(losses) / len(losses),
                    "lr": scheduler.get_last_lr()[0],
                    "tokens_seen": tokens_seen,
                    "elapsed_s": round(time.time() - start, 2),
                    "started": round(start, 3),  # which process: the card sums each one's time
                    "peak_resident_gb": round(resident, 2),  # see restart_above_gb
                }
                losses.clear()
                log(row)
            if due_eval:
                run_eval(saved / ckpt.MODEL)
            if restart:
                raise RestartToFreeMemory(step, resident, limit)
        if accelerator.is_main_process:
            ckpt.write_final(out, write_model, trainer_state())
            if evaluate is not None and config.eval_every and step % config.eval_every:
                run_eval(final)
    accelerator.wait_for_everyone()
    # Tear the process group down here: a gloo group left to interpreter exit aborted a
    # process now and then ("terminate called without an active exception").
    accelerator.end_training()
    return final
