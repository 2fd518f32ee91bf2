"""A merged copy of a LoRA policy, for the local engine to sample and evaluate with.

Why: the learner's model is a peft `PeftModel`, where every adapted linear layer runs its base
layer, then the adapter's two small matmuls, a scale and an add. At the few rows a CPU decodes
at once, a step's cost is its op count more than its arithmetic, so rollouts and dev
evaluations decoded through the adapter pay for those extra ops on every token. The copy holds
each adapted weight as W0 + ΔW and decodes as a plain model.

Contract: `MergedSampler(policy)` builds `.model` (a plain transformers model: the policy's base
with its adapter merged, no gradients) and `.sync(version)` writes the policy's current adapter
into it when `version` (the learner's policy id) differs from the one it holds, returning
whether it did. The merged weights are computed in fp32 from the policy's own base weights,
which never change, so rounding does not accumulate over refreshes. Samples from the copy are
those of the policy up to that rounding (the importance ratio's old logprobs are the copy's, as
a serving engine's would be). It costs a second copy of the weights in memory.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

_PEFT_PREFIX = "base_model.model."


def lora_layers(policy: Any) -> list[tuple[str, Any]]:
    """(name in the merged model, peft LoRA layer) for every adapted layer of `policy`."""
    from peft.tuners.lora import LoraLayer

    return [
        (name.removeprefix(_PEFT_PREFIX), module)
        for name, module in policy.named_modules()
        if isinstance(module, LoraLayer)
    ]


class MergedSampler:
    def __init__(self, policy: Any) -> None:
        self.policy = policy
        layers = lora_layers(policy)
        if not layers:
            raise ValueError("MergedSampler needs a LoRA policy (a peft model with adapters)")
        # a whole copy (merging in place would round the learner's base weights at every step)
        self.model = copy.deepcopy(policy).merge_and_unload()
        self.model.requires_grad_(False).eval()
        self._pairs = [(layer, self.model.get_submodule(name)) for name, layer in layers]
        self.version: str | None = None

    @torch.no_grad()
    def sync(self, version: str) -> bool:
        """The policy's current adapter into the copy, unless it holds `version` already."""
        if version == self.version:
            return False
        for layer, target in self._pairs:
            (adapter,) = layer.active_adapters
            merged = layer.base_layer.weight.float() + layer.get_delta_weight(adapter).float()
            target.weight.copy_(merged.to(target.weight.dtype))
        self.version = version
        return True
