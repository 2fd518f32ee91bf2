"""`TrainerConfig`: the settings every trainer's run file shares; SFTConfig and RLConfig extend it.

A trainer's config is one typed tree: every field carries its help text, unknown keys are
refused at every level (`extra="forbid"`, nested sections being pydantic models too), so a
typo anywhere in a run file is one `error:` line when the file loads, before any model does.
A trainer overrides a field here only to change its default (and says why in its help).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from wideseek.train.trainable import LoraSettings


class TrainerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        description="start model: 'default' (SmolLM2-135M-Instruct), a .gguf file, a model "
        "dir (HF format) or a LoRA adapter dir (an earlier run's final/, trained further)"
    )
    out_dir: str = Field(description="where checkpoints, metrics.jsonl and final/ go")
    lr: float = Field(1e-3, gt=0, description="learning rate of AdamW")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay")
    max_grad_norm: float = Field(1.0, gt=0, description="gradients clipped to this global norm")
    seed: int = Field(0, description="data order, adapter initialisation and sampling")
    save_every: int = Field(200, ge=0, description="checkpoint every N optimizer steps")
    keep_checkpoints: int = Field(2, ge=1, description="newest checkpoints kept on disk")
    eval_every: int = Field(0, ge=0, description="evaluate every N steps and at the end (0: never)")
    lora: LoraSettings | None = Field(
        None,
        description="train a new LoRA adapter on the model (None: train every weight); an "
        "adapter given as `model` trains its own",
    )
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto",
        description="a LoRA run's frozen base weights (auto: bf16 where the CPU or GPU has "
        "native bf16 units; see llm/dtype)",
    )
