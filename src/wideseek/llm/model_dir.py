"""Loading a local Hugging Face model directory, with one clear error for each way it is wrong.

A model directory is either a full model (config.json + weights + tokenizer) or a PEFT LoRA
adapter (adapter_config.json + adapter weights, a tokenizer optional). An adapter's
`base_model_name_or_path` is a base-model spec resolved by `llm/base_model.py` ("default", a
GGUF file, a model dir; a relative path is taken from the adapter's directory first), so an
adapter trained on the default base loads on any machine. `load_causal_lm` loads the base,
applies the adapter and, unless told not to, merges it (`merge_and_unload`: the engine then
runs a plain model, as fast as the base); `load_tokenizer` uses the adapter's own tokenizer
files when it has them, else the base's.

A missing directory, a torn `config.json`, truncated safetensors or a tokenizer that does not
parse all become a `ModelDirError` naming the directory, which the CLI prints as one line
(it is an `EngineError`), instead of a transformers or safetensors traceback. Used by the
local engine, the server command and training alike. transformers is imported on first use:
this module costs nothing to import.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wideseek.llm.base import EngineError

ADAPTER_CONFIG = "adapter_config.json"
INSTALL_PEFT = "pip install peft"
_TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json")


class ModelDirError(EngineError):
    """A model directory that is missing, incomplete or corrupt."""


def _load_errors() -> tuple[type[BaseException], ...]:
    # What transformers and safetensors raise for unreadable files: OSError (missing, bad
    # JSON), ValueError/KeyError (unknown architecture), RuntimeError (shape mismatch),
    # SafetensorError (a truncated or foreign weights file).
    from safetensors import SafetensorError

    return (OSError, ValueError, KeyError, RuntimeError, SafetensorError)


def require_model_dir(path: str | Path) -> Path:
    """`path` as a Path if it holds a config.json or an adapter_config.json; else a
    ModelDirError."""
    path = Path(path)
    if not (path / "config.json").is_file() and not is_adapter_dir(path):
        raise ModelDirError(f"{path}: not a model directory (no config.json or {ADAPTER_CONFIG})")
    return path


def is_adapter_dir(path: str | Path) -> bool:
    """A LoRA adapter directory, not a full model (a full model that also carries an adapter
    config is taken as the full model)."""
    path = Path(path)
    return (path / ADAPTER_CONFIG).is_file() and not (path / "config.json").is_file()


def adapter_base_dir(path: str | Path) -> Path:
    """The model directory of an adapter's base, resolved from its recorded spec."""
    from wideseek.llm.base_model import resolve_base_model  # imports this module

    path = Path(path)
    try:
        config = json.loads((path / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelDirError(f"{path}: cannot read {ADAPTER_CONFIG} ({_first_line(e)})") from e
    spec = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    if not isinstance(spec, str) or not spec:
        raise ModelDirError(f"{path}: {ADAPTER_CONFIG} records no base_model_name_or_path")
    local = path / spec
    base = resolve_base_model(local if not Path(spec).is_absolute() and local.exists() else spec)
    if is_adapter_dir(base):
        raise ModelDirError(f"{path}: its base {base} is itself an adapter")
    return base


def load_tokenizer(path: str | Path) -> Any:
    from transformers import AutoTokenizer

    path = require_model_dir(path)
    if is_adapter_dir(path) and not any((path / f).is_file() for f in _TOKENIZER_FILES):
        path = adapter_base_dir(path)
    try:
        return AutoTokenizer.from_pretrained(path)
    except _load_errors() as e:
        raise ModelDirError(f"{path}: cannot load tokenizer ({_first_line(e)})") from e


def load_causal_lm(path: str | Path, *, merge: bool = True, **kwargs: Any) -> Any:
    """`AutoModelForCausalLM.from_pretrained(path, **kwargs)`; for an adapter directory, its
    base with the adapter applied: merged into the weights (`merge`, for serving), or as a
    trainable PeftModel (to go on training the adapter)."""
    path = require_model_dir(path)
    if not is_adapter_dir(path):
        return _load_full_model(path, **kwargs)
    base = _load_full_model(adapter_base_dir(path), **kwargs)
    try:
        from peft import PeftModel
    except ImportError:
        raise ModelDirError(f"{path}: loading a LoRA adapter needs peft: {INSTALL_PEFT}") from None
    try:
        model = PeftModel.from_pretrained(base, path, is_trainable=not merge)
    except _load_errors() as e:
        raise ModelDirError(f"{path}: cannot load adapter ({_first_line(e)})") from e
    return model.merge_and_unload() if merge else model


def _load_full_model(path: Path, **kwargs: Any) -> Any:
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except _load_errors() as e:
        raise ModelDirError(f"{path}: cannot load model ({_first_line(e)})") from e


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
