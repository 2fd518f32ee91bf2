"""The model a trainer updates: loading (full model or LoRA), its dtype, saving it loadable.

Contract: `load_trainable(spec, lora=, dtype=)` returns a `Trainable` (model, tokenizer, the
`ResolvedModel` it came from, whose `base_spec` an adapter records, the dtype and why), for
every trainer of the project (SFT and RL):
- `spec` is a model spec or a `ResolvedModel` (llm/resolved_model.py: "default", a GGUF file,
  a model dir, a LoRA adapter dir), resolved once. An adapter is loaded trainable, to go on
  training it (a later phase, or RL after SFT); its `lora` settings are the adapter's own.
- With `lora` (a `LoraSettings`), a fresh peft LoRA adapter wraps the base: only the adapter
  trains; the base's weights stay frozen in the chosen dtype while the adapter's weights stay
  fp32 (peft keeps adapter weights in fp32 over a bf16 base), so updates are not rounded away.
- Without, every weight trains (the from-scratch models, or full fine-tuning on a GPU), in fp32:
  bf16 weights would round small updates away (accelerate's `mixed_precision` sets the compute
  type instead).
- `dtype` is the frozen base's, `pick_dtype`'s choice ("auto": bf16 where the CPU or GPU has
  native bf16 units).

`save_trained(trainable, model, out_dir, card)` writes a directory that `resolve_model` loads:
for LoRA the adapter alone (a few MB, `base_model_name_or_path` set to a portable spec:
"default" for the default base or any copy of its GGUF file, embeddings never saved: they are
frozen and peft would otherwise look the base up on the Hub) plus the tokenizer with the
project's chat template; for a full model, model and tokenizer; and the trainer's short card
(train/training_card.py) as README.md, not peft's boilerplate; and the agent limits and
decoding the start model recommends (`wideseek.json`, an adapter's own generation_config.json),
kept by a model trained on from it. It replaces `out_dir` atomically. This module knows models
and peft; not data or training loops.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from wideseek.io import atomic_write_dir
from wideseek.llm.model_dir import (
    ADAPTER_CONFIG,
    GENERATION_CONFIG,
    INSTALL_PEFT,
    ModelDirError,
    ModelInfo,
    RecommendedLimits,
    weights_sha256,
    write_model_info,
)
from wideseek.llm.model_loading import load_causal_lm, load_tokenizer, quiet_peft
from wideseek.llm.resolved_model import ModelSpec, ResolvedModel, resolve_model
from wideseek.train.training_card import TrainingCard


class LoraSettings(BaseModel):
    """A new LoRA adapter (peft's LoraConfig fields that matter here)."""

    model_config = ConfigDict(extra="forbid")

    r: int = Field(16, ge=1, description="rank")
    alpha: int = Field(32, ge=1, description="scale numerator (the update is alpha / r)")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the adapter's input")
    target_modules: list[str] | str = Field(
        "all-linear", description="module names, or 'all-linear' (every linear but lm_head)"
    )
    top_layers: int | None = Field(
        None,
        ge=1,
        description="adapt only the top N decoder layers: backward then stops below them, "
        "which is much faster on a CPU (None: every layer)",
    )


@dataclass
class Trainable:
    model: Any  # a transformers model, or a peft PeftModel wrapping one
    tokenizer: Any
    resolved: ResolvedModel  # what it was loaded from
    dtype: Any  # torch.dtype of the frozen / trained weights
    dtype_reason: str
    is_lora: bool
    # an adapter start's own generation_config.json (text, read at load), kept by what it trains
    start_generation: str | None = None

    @property
    def base_spec(self) -> str:
        """What an adapter trained from it records as its base: portable ("default")."""
        return self.resolved.base_spec

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    @cached_property
    def frozen_weights(self) -> str | None:
        """The digest of the base a LoRA run keeps frozen (its weight files, as
        `model_dir.weights_sha256` reads them); None when every weight trains. Checkpoints
        leave the frozen weights out and a resume loads them from the base's directory again,
        so the checkpoint records this and a resume checks it (train/checkpoints.py)."""
        return weights_sha256(self.resolved.base_dir) if self.is_lora else None


def load_trainable(
    spec: ModelSpec, *, lora: LoraSettings | None = None, dtype: str = "auto"
) -> Trainable:
    """Load `spec` for training (see the module docstring)."""
    from wideseek.llm.dtype import pick_dtype

    resolved = resolve_model(spec)
    full = lora is None and not resolved.is_adapter
    if full:
        choice = pick_dtype("fp32")._replace(reason="fp32: every weight trains")
    else:
        choice = pick_dtype(dtype, "cuda" if _has_cuda() else "cpu")
    # an adapter is loaded trainable (unmerged) to go on training it
    model = load_causal_lm(resolved, merge=not resolved.is_adapter, dtype=choice.dtype)
    if lora is not None and not resolved.is_adapter:
        model = _wrap_lora(model, lora)
    tokenizer = load_tokenizer(resolved)
    own = resolved.dir / GENERATION_CONFIG  # a full model's save_pretrained writes its own
    generation = own.read_text(encoding="utf-8") if resolved.is_adapter and own.is_file() else None
    return Trainable(
        model, tokenizer, resolved, choice.dtype, choice.reason, is_lora=not full,
        start_generation=generation,
    )  # fmt: skip


def _wrap_lora(model: Any, lora: LoraSettings) -> Any:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise ModelDirError(f"LoRA training needs peft: {INSTALL_PEFT}") from None
    layers, targets = None, lora.target_modules
    if lora.top_layers is not None:
        total = int(model.config.num_hidden_layers)
        layers = list(range(max(0, total - lora.top_layers), total))
        if targets == "all-linear":  # peft takes a layer subset only with named modules
            targets = _linear_names(model)
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=targets,
        layers_to_transform=layers,
        task_type="CAUSAL_LM",
    )
    with quiet_peft():
        return get_peft_model(model, config)


def _linear_names(model: Any) -> list[str]:
    """The names of the decoder's linear modules ("q_proj", ...): peft's "all-linear"."""
    import torch

    output = model.get_output_embeddings()
    return sorted(
        {
            name.rsplit(".", 1)[-1]
            for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and module is not output
        }
    )


def save_trained(trainable: Trainable, model: Any, out_dir: Path, card: TrainingCard) -> None:
    """Write `model` (the trained, unwrapped-from-accelerate model) loadably into `out_dir`,
    with the trainer's `card` as its README.md (in place of peft's, which names this machine's
    copy of the base); `out_dir` is replaced atomically."""
    atomic_write_dir(lambda path: write_trained(trainable, model, path, card), Path(out_dir))


def write_trained(trainable: Trainable, model: Any, path: Path, card: TrainingCard) -> None:
    """`save_trained`'s content, written into the existing directory `path` (for a caller that
    puts more beside it before the directory goes in place: train/checkpoints.write_final)."""
    if trainable.is_lora:
        model.save_pretrained(path, save_embedding_layers=False)
        _record_base(path / ADAPTER_CONFIG, trainable.base_spec)
    else:
        model.save_pretrained(path)  # safetensors
    trainable.tokenizer.save_pretrained(path)
    base = trainable.base_spec if trainable.is_lora else None
    (path / "README.md").write_text(card.render(model, base), encoding="utf-8")
    _carry_recommendations(trainable.resolved, trainable.start_generation, path)


def _carry_recommendations(start: ResolvedModel, generation: str | None, path: Path) -> None:
    """A model trained on from one that recommends agent limits and decoding (a shipped
    model: greedy, the limits it was scored under) keeps them until its own scores say
    otherwise: without them an RL or stage-2 model would run under the generic limits and its
    base's sampling, and compare with its start under other settings. Not its name or history
    (`train ship` writes those). Both as the run loaded them: a start re-shipped at its path
    during a run does not change what its checkpoints recommend."""
    if start.limits != RecommendedLimits():  # as read when the run loaded it
        write_model_info(path, ModelInfo(limits=start.limits))
    if generation is not None and not (path / GENERATION_CONFIG).exists():
        (path / GENERATION_CONFIG).write_text(generation, encoding="utf-8")


def _record_base(config_path: Path, base_spec: str) -> None:
    """peft records the base's local path; a portable spec ("default") loads anywhere."""
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = base_spec
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()
