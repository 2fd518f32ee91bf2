"""A model spec resolved once: `resolve_model(spec) -> ResolvedModel`.

A spec is what a user or a config names as a model: "default" (or None), a `.gguf` file, a model
directory, or a LoRA adapter directory. `resolve_model` finds the files (converting a GGUF file
once, llm/base_model.py), finds the full model under an adapter, reads what the directory
recommends, and returns one frozen value. The loaders (llm/model_loading.py), `LocalEngine`,
the trainers (train/trainable.py) and the runtime take that value, so no one looks at the files
again or guesses from file names:
- `dir`: the model directory (a full model, or an adapter); `base_dir`: the full model under
  it (`dir` itself, or the adapter's base, resolved from the spec the adapter records: a
  relative path is taken from the adapter's directory first); `tokenizer_dir`: the adapter's own
  tokenizer files when it has them, else the base's;
- `base_spec`: what an adapter trained on this model records as its base: "default" for the
  default base or any copy of its GGUF file, else the spec the base came from;
- `name`: `wideseek.json`'s name, else the GGUF file stem of a converted base, else the
  directory's name;
- `generation`: generation_config.json's sampling settings (an adapter's own, else its base's);
- `limits`: the agent limits `wideseek.json` recommends (those the model was evaluated with).

Every problem is one `ModelDirError` line. Resolving reads small files only; loading weights is
the loaders' job.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from wideseek.llm.base_model import (
    DEFAULT_SPEC,
    converted_name,
    portable_base_spec,
    resolve_base_model,
)
from wideseek.llm.model_dir import (
    GENERATION_CONFIG,
    GenerationDefaults,
    ModelDirError,
    RecommendedLimits,
    has_tokenizer,
    is_adapter_dir,
    read_generation_defaults,
    read_model_info,
    recorded_base_spec,
)


@dataclass(frozen=True)
class ResolvedModel:
    """One model, found and read (see the module docstring)."""

    spec: str  # as given
    dir: Path
    base_dir: Path
    tokenizer_dir: Path
    is_adapter: bool
    base_spec: str
    name: str
    generation: GenerationDefaults
    limits: RecommendedLimits

    def recommended(self, context_length: int) -> dict[str, float | int]:
        """The agent settings this model recommends, by AgentConfig field name, for an engine
        with `context_length` tokens: its sampling settings, then its evaluated limits (which
        win where both set the response cap); the context never above the engine's."""
        settings: dict[str, float | int] = {"context_length": context_length}
        generation = {
            "temperature": self.generation.temperature,
            "top_p": self.generation.top_p,
            "max_response_tokens": self.generation.max_new_tokens,
        }
        settings |= {k: v for k, v in generation.items() if v is not None}
        settings |= self.limits.given()
        settings["context_length"] = min(int(settings["context_length"]), context_length)
        return settings


ModelSpec = ResolvedModel | str | os.PathLike[str] | None


def resolve_model(
    spec: ModelSpec, cache_dir: str | os.PathLike[str] | None = None
) -> ResolvedModel:
    """`spec` resolved (see the module docstring); a `ResolvedModel` is returned as is."""
    if isinstance(spec, ResolvedModel):
        return spec
    directory = resolve_base_model(spec, cache_dir)
    adapter = is_adapter_dir(directory)
    base_dir = _adapter_base(directory, cache_dir) if adapter else directory
    own_generation = not adapter or (directory / GENERATION_CONFIG).is_file()
    info = read_model_info(directory)
    return ResolvedModel(
        spec=DEFAULT_SPEC if spec is None else str(spec),
        dir=directory,
        base_dir=base_dir,
        tokenizer_dir=directory if not adapter or has_tokenizer(directory) else base_dir,
        is_adapter=adapter,
        base_spec=portable_base_spec(base_dir),
        name=info.name or converted_name(directory) or directory.name,
        generation=read_generation_defaults(directory if own_generation else base_dir),
        limits=info.limits,
    )


def _adapter_base(adapter_dir: Path, cache_dir: str | os.PathLike[str] | None) -> Path:
    spec = recorded_base_spec(adapter_dir)
    local = adapter_dir / spec
    base = resolve_base_model(
        local if not Path(spec).is_absolute() and local.exists() else spec, cache_dir
    )
    if is_adapter_dir(base):
        raise ModelDirError(f"{adapter_dir}: its base {base} is itself an adapter")
    return base
