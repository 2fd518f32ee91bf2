"""The policy loss of WideSeek-R1's GRPO variant: dual-level token weights, clipped ratios.

Contract:
- `token_weights(generated, rollouts)`: the weight of each trained token of each agent,
  1 / (B · A_i · N_ia) for B = `rollouts` rollouts, A_i trained agents in rollout i and N_ia
  tokens trained of agent a: rollouts count equally in the batch, agents equally within
  their rollout, tokens equally within their agent. So a rollout with ten subagents does not
  outweigh one with one, and a long agent does not outweigh a short one. As published, B counts
  every rollout of the step, those that train nothing (flat groups, no trainable turn)
  included, so the weights of the rollouts given sum to their share of the step; B defaults to
  the rollouts given (the weights then sum to 1).
- `policy_loss(new, old, advantages, weights, mask, ...)`: the clipped surrogate per token,
  ratio = exp(clamp(new - old, ±20)), max(-A·ratio, -A·clip(ratio, 1-ε_low, 1+ε_high)), for A < 0
  further capped at -A·c (dual-clip), summed with the weights over masked tokens. Returns the
  loss and its statistics (clip fractions, mean ratio, approximate KL to the sampler).
  With `early_stop_ratio`, a micro-batch whose mean ratio over its masked tokens exceeds it
  is dropped: its loss is multiplied by 0 (no gradient, the graph kept so a data-parallel
  backward stays in step), `stats["early_stopped"]` = 1. That is RLinf's
  `algorithm.early_stop_imp_ratio` (5.0 in WideSeek-R1's configs; rlinf/workers/actor/
  megatron_actor_worker.py: "Abandon this microbatch"), there over the data-parallel mean of a
  Megatron micro-batch, here over what one call is given (the trainer: one agent's sample).
  Off-policy samples (`max_staleness`) are where it bites: on-policy the ratio is ~1.
- `reference_kl(new, reference)`: the low-variance (k3) estimate of KL(policy || reference) per
  token, exp(ref - new) - (ref - new) - 1 >= 0, with the gradient of `new` (verl's and RLinf's
  `low_var_kl`, clamped as theirs); the optional anchor to the start model (`kl_coef`).
Definitions as published (../shared/wideseek_r1/RLINF.md 4.3-4.4); tensors are (B, T).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pydantic import BaseModel, ConfigDict, Field

LOG_RATIO_LIMIT = 20.0


class ClipSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    eps_low: float = Field(0.2, ge=0, lt=1, description="ratio clipped below at 1 - eps_low")
    eps_high: float = Field(
        0.28,
        ge=0,
        description="clipped above at 1 + eps_high (clip-higher: more room for "
        "raising unlikely tokens)",
    )
    dual_clip: float | None = Field(
        10.0, gt=1, description="cap on a negative-advantage token's loss, x |A| (None: off)"
    )


def token_weights(
    generated: Sequence[Sequence[int]], rollouts: int | None = None
) -> list[list[float]]:
    """Per rollout, per agent: the weight of each of that agent's trained tokens.
    `generated[i][a]` is the number of tokens agent a of rollout i is trained on; agents with
    none are left out of A_i. `rollouts`: B, at least len(generated) (None: len(generated))."""
    rollouts = len(generated) if rollouts is None else rollouts
    if rollouts < len(generated):
        raise ValueError(f"B = {rollouts} rollouts, fewer than the {len(generated)} given")
    weights: list[list[float]] = []
    for agents in generated:
        trained = sum(1 for n in agents if n > 0)
        weights.append([1.0 / (rollouts * trained * n) if n > 0 else 0.0 for n in agents])
    return weights


def policy_loss(
    new_logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    weights: torch.Tensor,
    mask: torch.Tensor,
    clip: ClipSettings | None = None,
    early_stop_ratio: float | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """new/old logprobs, weights, mask (B, T); advantages (B,) or (B, T) -> (loss, stats).
    `early_stop_ratio`: drop the whole call's loss when its mean ratio is above it (None: off)."""
    clip = clip or ClipSettings()
    mask = mask.bool()
    adv = advantages if advantages.dim() == 2 else advantages.unsqueeze(-1).expand_as(mask)
    log_ratio = (new_logprobs - old_logprobs).clamp(-LOG_RATIO_LIMIT, LOG_RATIO_LIMIT)
    ratio = log_ratio.exp()
    plain = -adv * ratio
    clipped = -adv * ratio.clamp(1.0 - clip.eps_low, 1.0 + clip.eps_high)
    per_token = torch.maximum(plain, clipped)
    dual = torch.zeros_like(mask)
    if clip.dual_clip is not None:
        cap = -adv * clip.dual_clip  # positive where A < 0
        dual = (adv < 0) & (per_token > cap)
        per_token = torch.where(dual, cap, per_token)
    loss = (per_token * weights * mask).sum()
    n = mask.sum().clamp(min=1)
    with torch.no_grad():
        ratio_mean = float((ratio * mask).sum() / n)
    stopped = early_stop_ratio is not None and ratio_mean > early_stop_ratio
    if stopped:
        loss = loss * 0.0
    with torch.no_grad():
        stats = {
            "clip_frac": float(((clipped > plain) & mask).sum() / n),
            "dual_clip_frac": float((dual & mask).sum() / n),
            "ratio_mean": ratio_mean,
            "early_stopped": float(stopped),
            # k3 estimate of KL(sampler || policy) over the sampler's tokens: r - 1 - log r >= 0
            "approx_kl": float(((ratio - 1 - log_ratio) * mask).sum() / n),
        }
    return loss, stats


def reference_kl(new_logprobs: torch.Tensor, reference_logprobs: torch.Tensor) -> torch.Tensor:
    """Per token, the k3 estimate of KL(policy || reference) (module docstring), same shape."""
    diff = (reference_logprobs - new_logprobs).clamp(-LOG_RATIO_LIMIT, LOG_RATIO_LIMIT)
    return (diff.exp() - diff - 1).clamp(max=10.0)
