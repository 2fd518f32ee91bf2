"""How far one RL update moves the policy, at each learning rate, on one real step's batch.

    python bench/rl_step_size.py --config configs/rl-demo-cpu.yaml --lrs 1e-5,3e-5,1e-4 \
        model=../shared/reference/sft-probe-adapter out_dir=RUN [key=value ...]

RUN is an RL run (`wideseek train rl` with the same settings) whose step-1 rollouts are in
`RUN/rollouts/step-1/`: the trainer's own sampling side rebuilds that step's batch from them
(rewards, group advantages, trained turns, token weights 1/(B·A_i·N_ia)) without sampling again.
Then, for each learning rate, from the same start weights: one `policy_update` (the trainer's
optimizer step: AdamW, gradient clipping, the clipped loss), and the batch's logprobs again.
Printed per lr, over the trained tokens (before = the start weights' logprobs, not the
sampler's, so numerics do not count as movement):
- `Δlogp A>0` / `Δlogp A<0`: mean change of a token's logprob in rollouts with a positive /
  negative advantage (a useful step raises the first and lowers the second);
- `KL`: k3 estimate of KL(before || after) per token (r - 1 - log r, r = p_after / p_before);
- `outside clip`: tokens whose ratio after the step is outside [1 - eps_low, 1 + eps_high],
  i.e. that a second update on this batch would clip;
- `surrogate`: the batch's weighted objective Σ w·A·(r - 1) after the step (0 before it);
- `entropy`: the mean entropy of the next-token distribution at the trained tokens, after the
  step (the start weights' figure is printed above the table).
`--sides all,up,down` also updates on the rollouts with a positive (up) or negative (down)
advantage only, B unchanged, to see which side moves the entropy (an RL arm saw it double over
six updates while each update's KL stayed below 1e-3: results/rl-demo/README.md).
Why: the demonstration runs only ~10 steps, so a step that barely moves the policy shows no
gain, and one that moves it far collapses it; PPO-style runs usually keep KL per update near
1e-3–1e-2. Costs one update plus one scoring pass per lr, plus one scoring pass.
"""

from __future__ import annotations

import argparse
import math
import time
from collections import defaultdict

import torch
from rich.console import Console
from rich.table import Table

from wideseek.config import read_yaml_tree, validate_tree
from wideseek.train.rl.config import RLConfig
from wideseek.train.rl.logprobs import sequence_logprobs
from wideseek.train.rl.loss import token_weights
from wideseek.train.rl.trainer import RLTrainer
from wideseek.train.rl.update import Batch, Learner, learner_optimizer, policy_update


def trained_logprobs(trainer: RLTrainer, batch: Batch) -> tuple[list[torch.Tensor], float]:
    """Per agent sample of `batch`: the policy's logprobs of its trained tokens, at the
    sampling temperature; and the mean entropy at those tokens (over every token)."""
    model, device = trainer.model, trainer.accelerator.device
    model.eval()
    out, entropy_sum = [], 0.0
    with torch.no_grad():
        for samples, _ in batch:
            for s in samples:
                ids = torch.tensor([s.input_ids], device=device)
                mask = torch.tensor([s.response_mask[1:]], device=device)
                logprobs, entropy = sequence_logprobs(model, ids, trainer.config.temperature, mask)
                out.append(logprobs[mask].float().cpu())
                entropy_sum += (entropy or 0.0) * out[-1].numel()
    return out, entropy_sum / max(sum(t.numel() for t in out), 1)


SIDES = {
    "all": lambda advantage: True,
    "up": lambda advantage: advantage > 0,
    "down": lambda advantage: advantage < 0,
}


def movement(
    batch: Batch, rollouts: int, before: list[torch.Tensor], after: list[torch.Tensor],
    config: RLConfig,
) -> dict[str, float]:  # fmt: skip
    """The figures of the module docstring, from the logprobs before and after the step."""
    weights = token_weights([[s.n_generated for s in samples] for samples, _ in batch], rollouts)
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    low, high = 1 - config.clip.eps_low, 1 + config.clip.eps_high
    k = 0
    for (samples, advantage), agent_weights in zip(batch, weights, strict=True):
        side = "up" if advantage > 0 else "down"
        for _, weight in zip(samples, agent_weights, strict=True):
            delta = after[k] - before[k]
            ratio = delta.exp()
            k += 1
            sums[side] += float(delta.sum())
            counts[side] += delta.numel()
            sums["kl"] += float((ratio - 1 - delta).sum())
            sums["outside"] += float(((ratio < low) | (ratio > high)).sum())
            counts["all"] += delta.numel()
            sums["surrogate"] += float((weight * advantage * (ratio - 1)).sum())
    n = max(counts["all"], 1)
    return {
        "up": sums["up"] / counts["up"] if counts["up"] else math.nan,
        "down": sums["down"] / counts["down"] if counts["down"] else math.nan,
        "kl": sums["kl"] / n,
        "outside": sums["outside"] / n,
        "surrogate": sums["surrogate"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True, help="the RL run file of the run")
    ap.add_argument("--lrs", default="1e-5,3e-5,1e-4", help="comma-separated learning rates")
    ap.add_argument("--sides", default="all", help="comma-separated: all, up (A > 0), down (A < 0)")
    ap.add_argument("overrides", nargs="*", help="key=value, as for `wideseek train rl`")
    args = ap.parse_args()
    config = validate_tree(RLConfig, read_yaml_tree(args.config, args.overrides), args.config)
    trainer = RLTrainer(config, show_progress=False)
    trainer.narrow_pool()  # the pool a run's steps draw from, as RLTrainer.train has it
    try:
        started = time.time()
        batch, rollouts, figures = trainer.sample_step()  # step 1's folder, reused when complete
        tokens = sum(s.n_generated for samples, _ in batch for s in samples)
        print(f"step 1: {len(batch)} kept rollouts of B = {rollouts}, {tokens} trained tokens, "
              f"reward {figures['reward_mean']:.3f} ± {figures['reward_std']:.3f} "
              f"({time.time() - started:.0f} s)")  # fmt: skip
        if not batch:
            raise SystemExit("every group of step 1 is flat: nothing to train on")
        start = {n: p.detach().clone() for n, p in trainer.model.named_parameters()
                 if p.requires_grad}  # fmt: skip
        before, entropy_before = trained_logprobs(trainer, batch)
        print(f"entropy at the trained tokens, start weights: {entropy_before:.4f}")
        columns = ("lr", "side", "Δlogp A>0", "Δlogp A<0", "KL", "outside clip", "surrogate",
                   "entropy", "grad norm", "seconds")  # fmt: skip
        table = Table(*columns, title="one update on step 1's batch")
        for lr in map(float, args.lrs.split(",")):
            for side in args.sides.split(","):
                started = time.time()
                with torch.no_grad():
                    for name, p in trainer.model.named_parameters():
                        if name in start:
                            p.copy_(start[name])
                optimizer = learner_optimizer(trainer.model, config.model_copy(update={"lr": lr}))
                learner = Learner(trainer.accelerator, trainer.model, optimizer, trainer.procs)
                part = [(samples, a) for samples, a in batch if SIDES[side](a)]
                update = policy_update(part, rollouts, learner, config)
                after, entropy = trained_logprobs(trainer, batch)
                moved = movement(batch, rollouts, before, after, config)
                row = (
                    f"{lr:g}", side, f"{moved['up']:+.4f}", f"{moved['down']:+.4f}",
                    f"{moved['kl']:.2e}", f"{moved['outside']:.3f}", f"{moved['surrogate']:+.2e}",
                    f"{entropy:.4f}", f"{update['grad_norm']:.3f}", f"{time.time() - started:.0f}",
                )  # fmt: skip
                table.add_row(*row)
                print("  ".join(f"{c}={v}" for c, v in zip(columns, row, strict=True)), flush=True)
        Console(width=170).print(table)
    finally:
        trainer.close()


if __name__ == "__main__":
    main()
