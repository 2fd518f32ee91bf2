"""A LoRA adapter with random (non-zero) A and B, saved as training saves one: merging it changes
the weights, so tests of merging, exporting and loading adapters can tell it was applied.

`save_random_adapter(base, out, spec, targets, r)` wraps the model at `base` (seeded: the same
weights every call), records `spec` as the adapter's base, saves it to `out` and returns the
PEFT model (eval mode) for comparison.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from wideseek.llm.model_loading import load_causal_lm, quiet_peft


def save_random_adapter(
    base: str | Path,
    out: Path,
    spec: str,
    targets: Sequence[str] = ("q_proj", "v_proj", "down_proj"),
    r: int = 4,
) -> torch.nn.Module:
    import peft

    torch.manual_seed(0)
    config = peft.LoraConfig(
        r=r, lora_alpha=8, target_modules=list(targets), init_lora_weights=False
    )
    with quiet_peft():
        model = peft.get_peft_model(load_causal_lm(base), config).eval()
    model.peft_config["default"].base_model_name_or_path = spec
    # save_embedding_layers=False: "auto" looks the base up on the Hub to compare vocabularies
    model.save_pretrained(out, save_embedding_layers=False)
    return model
