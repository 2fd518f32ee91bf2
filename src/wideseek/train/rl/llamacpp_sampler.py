"""The RL policy sampled by llama.cpp in process: each version's merged weights written as one
GGUF file, and an engine opened on it.

Why: on a CPU without bf16 units torch decodes in fp32, and there llama.cpp ran the shipped
model's agents ~3x faster (llm/llamacpp_engine.py). A new version costs one export and one load
(seconds: bench/rl_llamacpp.py) against minutes of rollouts a step.

Contract: `LlamaCppSampler(policy, model, tokenizer, out_dir, lora=...)` for the learner's
`policy` (a peft model when `lora`, else a plain one) on `model` (its resolved start, whose base
is a GGUF file: another is refused at once, in one line).
- `engine(version)`: a `LlamaCppEngine` holding the policy's weights of `version` (the learner's
  policy id). When it holds another, the held engine is freed, a LoRA policy's adapter is
  merged into a copy (`MergedSampler`: computed in fp32 from the base weights, which never
  change), the weights are written to `out_dir/gguf/policy.gguf` as `weights` (f16 by default,
  as `rollout_engine.weights`; `gguf_export.write_gguf`) and a new engine opened on the file.
  Call it between steps only, with no request in flight.
- `close()`: frees the engine.
The old logprobs of the update's ratio are llama.cpp's own, recorded with each sampled token, as
a serving engine's are; they differ from the learner's by llama.cpp's rounding, and with q8_0
weights by the quantisation too (the `approx_kl` of a step's metrics row measures sampler
against learner). This module knows versions and files; the engine knows llama.cpp.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from wideseek.llm.gguf_export import ExportWeights, source_gguf, write_gguf
from wideseek.llm.llamacpp_engine import LlamaCppEngine
from wideseek.llm.resolved_model import ResolvedModel
from wideseek.train.rl.merged_sampler import MergedSampler
from wideseek.train.rl.notes import note

GGUF_DIR = "gguf"  # out_dir/gguf/policy.gguf: the version being sampled, replaced by the next


class LlamaCppSampler:
    def __init__(
        self,
        policy: Any,
        model: ResolvedModel,
        tokenizer: Any,
        out_dir: Path,
        *,
        lora: bool = True,
        weights: ExportWeights = "f16",
        context_length: int | None = None,
        slots: int = 16,
        seed: int = 0,
    ) -> None:
        self.source = source_gguf(model)  # a base that is no GGUF file: refused before step 1
        self.policy = policy
        self.merged = MergedSampler(policy) if lora else None
        self.model = model
        self.tokenizer = tokenizer
        self.path = out_dir / GGUF_DIR / "policy.gguf"
        self.weights: ExportWeights = weights
        self.options = {"context_length": context_length, "slots": slots, "seed": seed}
        self._engine: LlamaCppEngine | None = None
        self.version: str | None = None  # the policy id whose weights the engine holds

    def engine(self, version: str) -> LlamaCppEngine:
        """The engine on `version`'s weights, written and loaded when it holds others."""
        if self._engine is not None and version == self.version:
            return self._engine
        started = time.time()
        self.close()
        if self.merged is not None:
            self.merged.sync(version)
        plain = self.merged.model if self.merged is not None else self.policy
        write_gguf(plain, self.model, self.path, self.weights,
                   source=self.source, tokenizer=self.tokenizer)  # fmt: skip
        self._engine = LlamaCppEngine(
            self.model, model_name="policy", gguf=self.path, tokenizer=self.tokenizer,
            **self.options,
        )  # fmt: skip
        self.version = version
        note(f"llama.cpp sampler: version {version} written as {self.weights} and loaded "
             f"({time.time() - started:.1f}s)")  # fmt: skip
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.free()
            self._engine, self.version = None, None
