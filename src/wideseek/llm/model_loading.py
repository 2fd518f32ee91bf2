"""Loading a resolved model: its tokenizer, and its weights (a full model, or base + adapter).

`load_causal_lm(model)` loads a `ResolvedModel` (llm/resolved_model.py; a spec is resolved
first): a full model as is; an adapter as its base with the adapter applied and, unless told
not to, merged (`merge_and_unload`: the engine then runs a plain model, as fast as the base), or
kept as a trainable PeftModel (to go on training it). `load_tokenizer(model)` reads the
tokenizer from the model's `tokenizer_dir`.

transformers' hub kernels stay off (`use_kernels=False`): transformers 5.x otherwise fetches
kernels (e.g. kernels-community/rotary) from the Hub when a model loads on CUDA, which fails
offline; the model's own PyTorch code is what wideseek measures and trains.

Where stderr shows no live bar (a run under `nohup ... > log`; `progress.draws_live`, the
test the project's own progress display makes), transformers' "Loading weights" bar is off for
the load: tqdm would write every redraw into the log, a screenful of carriage returns at each
load (training reloads itself after a memory restart; evaluations load once per run), where
the project's own progress lines (wideseek.progress) say what a log needs.

`quiet_peft()` wraps every peft call that wraps a model (here and in train/trainable.py):
peft reads transformers 5's deprecated `is_gradient_checkpointing` then, a FutureWarning on
every load and every training run that tells a user nothing they can act on.

A torn `config.json`, truncated safetensors or a tokenizer that does not parse all become one
`ModelDirError` naming the directory, instead of a transformers or safetensors traceback. Used
by the local engine, the server command and training alike. transformers is imported on first
use: this module costs nothing to import.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wideseek.llm.model_dir import INSTALL_PEFT, ModelDirError, first_line
from wideseek.llm.resolved_model import ModelSpec, resolve_model


def _load_errors() -> tuple[type[BaseException], ...]:
    # What transformers and safetensors raise for unreadable files: OSError (missing, bad
    # JSON), ValueError/KeyError (unknown architecture), RuntimeError (shape mismatch),
    # SafetensorError (a truncated or foreign weights file).
    from safetensors import SafetensorError

    return (OSError, ValueError, KeyError, RuntimeError, SafetensorError)


@contextlib.contextmanager
def quiet_peft() -> Iterator[None]:
    """peft's reading of a deprecated transformers attribute, not reported (module docstring)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", "`is_gradient_checkpointing` is deprecated", category=FutureWarning
        )
        yield


@contextlib.contextmanager
def _no_bar_in_logs() -> Iterator[None]:
    """transformers' loading bar off while stderr shows no live bar (module docstring)."""
    from transformers.utils import logging as hf_logging

    from wideseek.progress import draws_live

    if draws_live() or not hf_logging.is_progress_bar_enabled():
        yield
        return
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.enable_progress_bar()


def load_tokenizer(model: ModelSpec) -> Any:
    from transformers import AutoTokenizer

    path = resolve_model(model).tokenizer_dir
    try:
        return AutoTokenizer.from_pretrained(path)
    except _load_errors() as e:
        raise ModelDirError(f"{path}: cannot load tokenizer ({first_line(e)})") from e


def load_causal_lm(model: ModelSpec, *, merge: bool = True, **kwargs: Any) -> Any:
    """`AutoModelForCausalLM.from_pretrained(dir, **kwargs)`; for an adapter, its base with
    the adapter applied: merged into the weights (`merge`, for serving), or as a trainable
    PeftModel (to go on training the adapter)."""
    model = resolve_model(model)
    if not model.is_adapter:
        return _load_full_model(model.dir, **kwargs)
    try:
        from peft import PeftModel
    except ImportError:
        raise ModelDirError(
            f"{model.dir}: loading a LoRA adapter needs peft: {INSTALL_PEFT}"
        ) from None
    base = _load_full_model(model.base_dir, **kwargs)
    try:
        with quiet_peft():
            adapted = PeftModel.from_pretrained(base, model.dir, is_trainable=not merge)
    except _load_errors() as e:
        raise ModelDirError(f"{model.dir}: cannot load adapter ({first_line(e)})") from e
    return adapted.merge_and_unload() if merge else adapted


def _load_full_model(path: Path, **kwargs: Any) -> Any:
    from transformers import AutoModelForCausalLM

    try:
        with _no_bar_in_logs():
            return AutoModelForCausalLM.from_pretrained(path, use_kernels=False, **kwargs)
    except _load_errors() as e:
        raise ModelDirError(f"{path}: cannot load model ({first_line(e)})") from e
