"""The files of one model directory, with one clear error for each way they are wrong.

A model directory is either a full model (config.json + weights + tokenizer) or a PEFT LoRA
adapter (adapter_config.json + adapter weights, a tokenizer optional). This module answers
questions about one directory's files without loading anything: is it a model directory, is it
an adapter, which base spec an adapter records, what its generation_config.json recommends, and
what its `wideseek.json` says (the model's name and the agent limits it was evaluated with).

Resolving a spec into a `ResolvedModel` (llm/resolved_model.py) and loading one
(llm/model_loading.py) build on it; it imports neither, nor the GGUF conversion.

Every problem is a `ModelDirError` naming the directory, which the CLI prints as one line (it
is an `EngineError`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from wideseek.io import file_sha256
from wideseek.llm.engine import EngineError

ADAPTER_CONFIG = "adapter_config.json"
GENERATION_CONFIG = "generation_config.json"
MODEL_INFO = "wideseek.json"
INSTALL_PEFT = "pip install peft"
TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json")


class ModelDirError(EngineError):
    """A model directory that is missing, incomplete or corrupt."""


def first_line(error: BaseException) -> str:
    """`Type: first line of the message`, for one-line errors that wrap a library's."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def is_model_dir(path: str | Path) -> bool:
    """A full model (config.json) or a LoRA adapter (adapter_config.json)."""
    path = Path(path)
    return (path / "config.json").is_file() or (path / ADAPTER_CONFIG).is_file()


def require_model_dir(path: str | Path) -> Path:
    """`path` as a Path if it is a model directory; else a ModelDirError."""
    path = Path(path)
    if not is_model_dir(path):
        raise ModelDirError(f"{path}: not a model directory (no config.json or {ADAPTER_CONFIG})")
    return path


def is_adapter_dir(path: str | Path) -> bool:
    """A LoRA adapter directory, not a full model (a full model that also carries an adapter
    config is taken as the full model)."""
    path = Path(path)
    return (path / ADAPTER_CONFIG).is_file() and not (path / "config.json").is_file()


def has_tokenizer(path: str | Path) -> bool:
    return any((Path(path) / name).is_file() for name in TOKENIZER_FILES)


def recorded_base_spec(adapter_dir: Path) -> str:
    """The base-model spec an adapter records (`base_model_name_or_path`), as written."""
    config = read_json_object(adapter_dir / ADAPTER_CONFIG, what=ADAPTER_CONFIG)
    spec = config.get("base_model_name_or_path")
    if not isinstance(spec, str) or not spec:
        raise ModelDirError(f"{adapter_dir}: {ADAPTER_CONFIG} records no base_model_name_or_path")
    return spec


# -- what a directory recommends ------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationDefaults:
    """The sampling settings of a generation_config.json (None: the file does not say)."""

    temperature: float | None = None  # `do_sample: false` reads as 0 (greedy)
    top_p: float | None = None
    max_new_tokens: int | None = None


def read_generation_defaults(model_dir: Path) -> GenerationDefaults:
    path = model_dir / GENERATION_CONFIG
    if not path.is_file():
        return GenerationDefaults()
    saved = read_json_object(path, what="generation config")
    try:
        temperature = 0.0 if saved.get("do_sample") is False else saved.get("temperature")
        return GenerationDefaults(
            temperature=None if temperature is None else float(temperature),
            top_p=None if saved.get("top_p") is None else float(saved["top_p"]),
            max_new_tokens=None
            if saved.get("max_new_tokens") is None
            else int(saved["max_new_tokens"]),
        )
    except (TypeError, ValueError) as e:
        raise ModelDirError(f"{path}: unreadable generation config ({first_line(e)})") from e


class RecommendedLimits(BaseModel):
    """Agent limits a model was evaluated with; `ask` and `eval` use them where the user sets
    none (None: no recommendation)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lead_turns: int | None = Field(None, ge=1, description="turns of the lead agent")
    subagent_turns: int | None = Field(None, ge=1, description="turns of each subagent")
    single_turns: int | None = Field(None, ge=1, description="turns of a single agent")
    max_response_tokens: int | None = Field(None, ge=1, description="tokens per generation")
    lead_response_tokens: int | None = Field(
        None,
        ge=1,
        description="tokens per generation of the lead or the single agent (the final "
        "table), if not the same as every agent's",
    )
    context_length: int | None = Field(None, ge=256, description="tokens per agent context")

    def given(self) -> dict[str, int]:
        """The limits it sets, by AgentConfig field name."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class TrainingPhase(BaseModel):
    """One phase a model was trained through (train/shipping.phase_summary), kept with the
    weights so that a model trained on from a shipped one still cards its whole history."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: int = Field(ge=0)
    tokens: int = Field(ge=0)
    wall_s: float = Field(ge=0)
    loss: float | None = None
    eval: dict[str, Any] = Field(default_factory=dict)


class ModelInfo(BaseModel):
    """`wideseek.json` beside the weights: what wideseek itself records about a model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(None, min_length=1, description="the model's name in traces, reports")
    limits: RecommendedLimits = Field(default_factory=RecommendedLimits)
    # phase name (sft, single/sft, rl ...) -> its summary, in training order
    training: dict[str, TrainingPhase] = Field(default_factory=dict)


def weights_sha256(model_dir: Path) -> str:
    """One digest of a model directory's weights (every .safetensors file, by name and
    content): the same model wherever it lies, and a re-shipped one at the same path differs."""
    digest = hashlib.sha256()
    for path in sorted(Path(model_dir).glob("*.safetensors")):
        digest.update(f"{path.name}:{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def read_model_info(model_dir: Path) -> ModelInfo:
    path = model_dir / MODEL_INFO
    if not path.is_file():
        return ModelInfo()
    try:
        return ModelInfo.model_validate(read_json_object(path, what=MODEL_INFO))
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ModelDirError(f"{path}: {where}: {err['msg']}") from None


def write_model_info(model_dir: Path, info: ModelInfo) -> None:
    skip = None if info.training else {"training"}  # models without a history stay as they were
    text = info.model_dump_json(indent=2, exclude_none=True, exclude=skip)
    (model_dir / MODEL_INFO).write_text(text + "\n", encoding="utf-8")


def read_json_object(path: Path, *, what: str) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelDirError(f"{path}: unreadable {what} ({first_line(e)})") from e
    if not isinstance(value, dict):
        raise ModelDirError(f"{path}: unreadable {what} (not a JSON object)")
    return value
