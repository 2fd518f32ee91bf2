"""Supervised fine-tuning of a causal LM on agent trajectories (and optionally raw pages).

Next-token loss on assistant tokens only (see sft_data.py). The loop runs on accelerate: a
single CPU process here, the same script multi-GPU with `accelerate launch`. Cosine schedule
with warm-up, gradient accumulation, periodic checkpoints with exact resume (model, optimizer,
scheduler, RNG states and the position in the data order), a metrics JSONL and a progress bar.
An optional `evaluate(model_dir, step)` callback runs dev evaluation through the real runtime.

It knows nothing about agents: examples come in as token ids and labels.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from wideseek.train.sft_data import IGNORE, SFTExample


class SFTConfig(BaseModel):
    model: str = Field(description="initial model dir (HF format) or a checkpoint to continue")
    out_dir: str = Field(description="where checkpoints, metrics.jsonl and the final model go")
    lr: float = Field(1e-3, description="peak learning rate")
    min_lr_ratio: float = Field(0.1, description="cosine floor as a fraction of lr")
    warmup_steps: int = Field(50, ge=0)
    epochs: float = Field(1.0, gt=0, description="passes over the examples (may be fractional)")
    batch_tokens: int = Field(8192, ge=64, description="padded tokens per micro-batch")
    grad_accum: int = Field(1, ge=1)
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    max_length: int = Field(2048, description="longer examples are skipped")
    seed: int = 0
    log_every: int = 10
    save_every: int = Field(200, description="checkpoint every N optimizer steps")
    eval_every: int = Field(0, description="run the evaluate callback every N steps (0: never)")
    mixed_precision: str = Field("no", description="no | bf16 | fp16 (GPU only)")


def make_batches(examples: Sequence[SFTExample], batch_tokens: int, seed: int) -> list[list[int]]:
    """Length-bucketed batches of example indices, shuffled deterministically by seed.

    Sorting by length before cutting into batches keeps padding small; shuffling the batches
    keeps the order random. Batch b of epoch e is the same on every run with the same seed.
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


def collate(examples: Sequence[SFTExample], pad_id: int) -> dict[str, Any]:
    import torch

    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)  # (B, T)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    tmp.replace(path)


def latest_checkpoint(out_dir: Path) -> Path | None:
    ckpts = [p for p in out_dir.glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    return max(ckpts, key=lambda p: int(p.name.split("-")[1]), default=None)


def train_sft(
    config: SFTConfig,
    examples: Sequence[SFTExample],
    evaluate: Callable[[str, int], dict[str, float]] | None = None,
    show_progress: bool = True,
) -> Path:
    """Train; returns the directory of the final model. Resumes from the latest checkpoint."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from rich.progress import Progress
    from transformers import AutoModelForCausalLM, AutoTokenizer, get_cosine_schedule_with_warmup

    if not examples:
        raise ValueError("no training examples (check the trajectories and max_length)")
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    accelerator = Accelerator(
        gradient_accumulation_steps=config.grad_accum, mixed_precision=config.mixed_precision
    )
    set_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(config.model)
    model = AutoModelForCausalLM.from_pretrained(config.model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    # 1) the schedule: steps are optimizer steps, over a fixed number of micro-batches
    batches_per_epoch = len(make_batches(examples, config.batch_tokens, config.seed))
    total_micro = max(1, math.ceil(batches_per_epoch * config.epochs))
    total_steps = max(1, total_micro // config.grad_accum)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.lr,
        betas=(0.9, 0.95),
    )
    scheduler = get_cosine_schedule_with_warmup(
        optimizer, config.warmup_steps, total_steps, num_cycles=0.5 * (1 - config.min_lr_ratio)
    )
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)

    # 2) resume: weights, optimizer, scheduler and RNG from the latest checkpoint
    micro = 0
    tokens_seen = 0
    resume = latest_checkpoint(out)
    if resume is not None:
        accelerator.load_state(str(resume))
        state = json.loads((resume / "trainer_state.json").read_text())
        micro, tokens_seen = state["micro_step"], state["tokens_seen"]
    metrics_path = out / "metrics.jsonl"
    start = time.time()
    running: list[float] = []

    def save(tag: str) -> Path:
        path = out / tag
        accelerator.save_state(str(path))
        accelerator.unwrap_model(model).save_pretrained(path / "model")
        tokenizer.save_pretrained(path / "model")
        _write_json(
            path / "trainer_state.json",
            {"micro_step": micro, "tokens_seen": tokens_seen, "step": micro // config.grad_accum},
        )
        return path

    model.train()
    progress = Progress(disable=not show_progress or not accelerator.is_main_process)
    with progress, metrics_path.open("a") as metrics:
        bar = progress.add_task("sft", total=total_micro, completed=micro)
        while micro < total_micro:
            # 3) the data order of this epoch, skipping what a resumed run already saw
            epoch, offset = divmod(micro, batches_per_epoch)
            batches = make_batches(examples, config.batch_tokens, config.seed + epoch)
            for batch_idx in batches[offset:]:
                if micro >= total_micro:
                    break
                batch = collate([examples[i] for i in batch_idx], pad_id)
                batch = {k: v.to(accelerator.device) for k, v in batch.items()}
                with accelerator.accumulate(model):
                    loss = model(**batch).loss  # token-mean over assistant tokens
                    accelerator.backward(loss)
                    if accelerator.sync_gradients:
                        accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad()
                micro += 1
                tokens_seen += int(batch["attention_mask"].sum())
                running.append(float(loss))
                progress.update(bar, advance=1, description=f"sft loss {running[-1]:.3f}")
                if not accelerator.sync_gradients:
                    continue
                step = micro // config.grad_accum
                if step % config.log_every == 0 or micro == total_micro:
                    row = {
                        "step": step,
                        "loss": sum(running) / len(running),
                        "lr": scheduler.get_last_lr()[0],
                        "tokens_seen": tokens_seen,
                        "elapsed_s": round(time.time() - start, 2),
                    }
                    running.clear()
                    metrics.write(json.dumps(row) + "\n")
                    metrics.flush()
                if config.save_every and step % config.save_every == 0:
                    save(f"checkpoint-{step}")
                if evaluate and config.eval_every and step % config.eval_every == 0:
                    ckpt = save(f"checkpoint-{step}")
                    result = {
                        "step": step,
                        "tokens_seen": tokens_seen,
                        **evaluate(str(ckpt / "model"), step),
                    }
                    metrics.write(json.dumps({"eval": result}) + "\n")
                    metrics.flush()
    final = out / "final"
    accelerator.unwrap_model(model).save_pretrained(final)
    tokenizer.save_pretrained(final)
    return final
