"""One RL update: a step's (agent samples, advantage) pairs → one optimizer step, on every process.

Contract: `policy_update(batch, rollouts, learner, config)` takes the whole step's batch on
every learner process (`Learner`: the accelerator, the prepared model and optimizer, the
processes) and
1) weights each trained token 1/(B·A_i·N_ia) over the *whole* step (`loss.token_weights`; B =
   `rollouts`, None: the pairs given), whichever process trains it;
2) trains this process on its share of the agent samples (`processes.LearnerProcesses.shard`,
   balanced by length), one backward per sample on the clipped loss (`sample_loss`:
   `loss.policy_loss` on logprobs recomputed at the sampling temperature against the ones the
   sampler recorded; with `kl_coef`, plus that weight times the k3 KL to the frozen start model,
   `Learner.reference`, weighted per token as the policy loss); a process left without a share
   backpropagates a zero loss;
3) takes one optimizer step after clipping the gradient norm;
4) returns the update's figures for the metrics row (loss, lr, grad norm, trained agents and
   tokens, and the mean of each `policy_loss` statistic, `early_stopped` summed), gathered
   from every process.
DDP all-reduces the gradients once, on each process's last backward (the others under
`no_sync`); as DDP averages, each loss is scaled by N, so the step's gradient is the sum over
every sample, as in one process. The settings (temperature, clip, early stop, grad norm) are
read from `config` at each call. It knows tensors and processes, not rollouts or engines: the
caller tells a sampling engine its weights changed.
"""

from __future__ import annotations

import contextlib
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from wideseek.train.heap import release_free_heap
from wideseek.train.rl.config import RLConfig
from wideseek.train.rl.logprobs import sequence_logprobs
from wideseek.train.rl.loss import policy_loss, reference_kl, token_weights
from wideseek.train.rl.processes import LearnerProcesses
from wideseek.train.rl.samples import AgentSample

Batch = list[tuple[list[AgentSample], float]]  # (a rollout's agent samples, its advantage)


@dataclass(frozen=True)
class Learner:
    """What an update trains with: the objects `accelerator.prepare` returned."""

    accelerator: Any  # accelerate.Accelerator
    model: Any  # the prepared (DDP-wrapped with several processes) torch model
    optimizer: Any
    procs: LearnerProcesses
    reference: Any = None  # the frozen start model the KL penalty anchors to (kl_coef > 0)


def learner_optimizer(model: Any, config: RLConfig) -> Any:
    """The learner's optimizer: AdamW over `model`'s trained parameters at `config.lr`."""
    import torch

    trained = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(
        trained, lr=config.lr, betas=(0.9, 0.999), eps=1e-5, weight_decay=config.weight_decay
    )


def policy_update(
    batch: Batch, rollouts: int | None, learner: Learner, config: RLConfig
) -> dict[str, float]:
    """One optimizer step over `batch` (module docstring, steps 1-4)."""
    accelerator, model, optimizer, procs = (
        learner.accelerator, learner.model, learner.optimizer, learner.procs
    )  # fmt: skip
    # 1) the token weights 1/(B·A_i·N_ia) over the whole step, whichever process trains
    generated = [[s.n_generated for s in samples] for samples, _ in batch]
    weights = token_weights(generated, rollouts)
    items = [(sample, advantage, weight)
             for (samples, advantage), agent_weights in zip(batch, weights, strict=True)
             for sample, weight in zip(samples, agent_weights, strict=True)]  # fmt: skip
    # 2) this process's share; a process left without one backpropagates a zero loss, as
    # DDP needs every process's backward to all-reduce
    mine = procs.shard([len(sample.input_ids) for sample, _, _ in items])
    model.train()
    optimizer.zero_grad()
    figures: list[tuple[float, dict[str, float]]] = []  # (loss, stats) per sample
    shortest = min(range(len(items)), key=lambda i: len(items[i][0].input_ids))
    for n, i in enumerate(mine or [shortest]):
        sample, advantage, weight = items[i]
        last = n == len(mine) - 1 or not mine
        # gradients are all-reduced on the last backward only; DDP averages them over the
        # N processes, so each loss is scaled by N: the sum over every sample, as in one
        with contextlib.nullcontext() if last else accelerator.no_sync(model):
            loss, stats = sample_loss(
                model,
                accelerator.device,
                config,
                sample,
                advantage,
                weight if mine else 0.0,
                learner.reference,
            )
            accelerator.backward(loss * procs.count)
        if mine:
            figures.append((float(loss.detach()), stats))
    # 3) the step, on every process (the gradients are the same everywhere)
    norm = accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
    optimizer.step()
    optimizer.zero_grad()
    release_free_heap()  # see train/heap.py
    # 4) the figures of every process's samples
    figures = procs.gather(figures)
    stats: dict[str, list[float]] = defaultdict(list)
    for _, sample_stats in figures:
        for key, value in sample_stats.items():
            stats[key].append(value)
    stopped = stats.pop("early_stopped", [])
    row = {k: statistics.fmean(v) for k, v in stats.items()}
    row["early_stopped"] = float(sum(stopped))  # agent samples whose loss was dropped
    # the weighted objective: the sum over every token and agent
    row["loss"] = sum(loss for loss, _ in figures)
    row["lr"] = float(optimizer.param_groups[0]["lr"])
    row["grad_norm"] = float(norm)
    row["trained_agents"] = float(len(items))
    row["trained_tokens"] = float(sum(map(sum, generated)))
    return row


def sample_loss(
    model: Any,
    device: Any,
    config: RLConfig,
    sample: AgentSample,
    advantage: float,
    weight: float,
    reference: Any = None,
) -> tuple[Any, dict[str, float]]:
    """One agent sample's weighted clipped loss (a 0-d tensor), plus `config.kl_coef` times its
    weighted KL to `reference` when both are set, and its statistics."""
    import torch

    ids = torch.tensor([sample.input_ids], device=device)  # (1, L)
    mask = torch.tensor([sample.response_mask[1:]], device=device)  # (1, L-1)
    new, entropy = sequence_logprobs(model, ids, config.temperature, mask)
    old = torch.tensor([sample.old_logprobs[1:]], device=device)  # (1, L-1)
    w = torch.full_like(old, weight)
    loss, stats = policy_loss(new, old, torch.tensor([advantage], device=device), w, mask,
                              config.clip, config.early_stop_ratio)  # fmt: skip
    if entropy is not None:
        stats["entropy"] = entropy
    if reference is not None and config.kl_coef > 0:
        with torch.no_grad():
            ref, _ = sequence_logprobs(reference, ids, config.temperature, mask)
        kl = reference_kl(new, ref) * mask
        # an early-stopped sample is dropped whole, its KL term with it
        kept = 1.0 - stats["early_stopped"]
        loss = loss + config.kl_coef * kept * (kl * w).sum()
        stats["kl_ref"] = float(kl.detach().sum() / mask.sum().clamp(min=1))
    return loss, stats
