"""Loading a local Hugging Face model directory, with one clear error for each way it is wrong.

A missing directory, a torn `config.json`, truncated safetensors or a tokenizer that does not
parse all become a `ModelDirError` naming the directory, which the CLI prints as one line
(it is an `EngineError`), instead of a transformers or safetensors traceback. Used by the
local engine, the server command and training alike. transformers is imported on first use:
this module costs nothing to import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wideseek.llm.base import EngineError


class ModelDirError(EngineError):
    """A model directory that is missing, incomplete or corrupt."""


def _load_errors() -> tuple[type[BaseException], ...]:
    # What transformers and safetensors raise for unreadable files: OSError (missing, bad
    # JSON), ValueError/KeyError (unknown architecture), RuntimeError (shape mismatch),
    # SafetensorError (a truncated or foreign weights file).
    from safetensors import SafetensorError

    return (OSError, ValueError, KeyError, RuntimeError, SafetensorError)


def require_model_dir(path: str | Path) -> Path:
    """`path` as a Path if it holds a config.json; a ModelDirError otherwise."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise ModelDirError(f"{path}: not a model directory (no config.json)")
    return path


def load_tokenizer(path: str | Path) -> Any:
    from transformers import AutoTokenizer

    path = require_model_dir(path)
    try:
        return AutoTokenizer.from_pretrained(path)
    except _load_errors() as e:
        raise ModelDirError(f"{path}: cannot load tokenizer ({_first_line(e)})") from e


def load_causal_lm(path: str | Path, **kwargs: Any) -> Any:
    """`AutoModelForCausalLM.from_pretrained(path, **kwargs)`."""
    from transformers import AutoModelForCausalLM

    path = require_model_dir(path)
    try:
        return AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except _load_errors() as e:
        raise ModelDirError(f"{path}: cannot load model ({_first_line(e)})") from e


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
