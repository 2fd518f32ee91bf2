"""A run's resume point, packed small enough to carry between machines in git.

A CPU run of the default recipe takes ~7 h, longer than a working session, and a session's
machine may keep nothing but the repository. `pack` writes the newest complete checkpoint of
a trainer's out_dir to a folder that can be committed: the trainer state, accelerate's files
(scheduler, RNG) and the trained weights and optimizer moments cast to bfloat16 (the default
recipe's checkpoint: 117 MB of float32 tensors -> ~59 MB), without the checkpoint's loadable
model/ (written again at the next save), with the run's metrics up to that step. `unpack`
writes it back into an out_dir as `checkpoint-<step>/`, each cast tensor in its recorded dtype,
unless that out_dir already holds a checkpoint as new; the trainer then resumes from it as from
its own (same data order, same step). The one difference from an uninterrupted run is the
rounding of weights and moments to bfloat16 once, at the hand-over (a relative 2^-8 at most);
scalars (Adam's step counts) are never cast. `--dtype fp32` packs them exactly, twice the size.
Made for SFT runs: an RL run's rollback copies a checkpoint's model/, which is not packed.

Contract: `pack(out_dir, dest, dtype)` -> the step packed; `unpack(src, out_dir)` -> the
checkpoint written, or None when out_dir's own is as new; `version_drift(src)` -> the packages
whose versions differ from the packing machine's (a base converted again by another
transformers may differ byte for byte, and the trainer then refuses the resume). Both raise
`CheckpointError`, one line, when there is nothing to pack, `dest` would swallow the run, or
the packed folder is missing or unreadable.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from wideseek.io import atomic_write_dir, atomic_write_text, iter_jsonl
from wideseek.train import checkpoints as ckpt
from wideseek.train.checkpoints import CheckpointError

PACKED = "carried.json"  # what was packed: the step and every cast tensor's own dtype
# what converts the base and saves and loads the state: another version may refuse the resume
_PACKAGES = ("torch", "transformers", "peft", "accelerate", "safetensors", "gguf")
_DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}
Cast = Callable[[str, torch.Tensor], torch.Tensor]


def pack(out_dir: Path, dest: Path, dtype: str = "bf16") -> int:
    """The newest complete checkpoint of `out_dir` into `dest` (replaced whole); its step."""
    found = ckpt.checkpoints(out_dir)
    if not found:
        raise CheckpointError(f"{out_dir}: no complete checkpoint to pack")
    run, into = Path(out_dir).resolve(), Path(dest).resolve()
    if into == run or into in run.parents:  # dest is replaced whole
        raise CheckpointError(f"{dest}: would replace the run {out_dir} itself; pack elsewhere")
    source, step = found[-1], ckpt.checkpoint_step(found[-1])
    to = _DTYPES[dtype]
    dtypes: dict[str, dict[str, str]] = {}

    def cast(file: str) -> Cast:
        record = dtypes.setdefault(file, {})

        def down(key: str, t: torch.Tensor) -> torch.Tensor:
            if not t.is_floating_point() or t.numel() < 2 or t.dtype == to:
                return t  # scalars such as Adam's step stay exact
            record[key] = str(t.dtype).removeprefix("torch.")
            return t.to(to)

        return down

    def write(tmp: Path) -> None:
        _copy_checkpoint(source, tmp / source.name, cast)
        _copy_metrics(Path(out_dir) / ckpt.METRICS, tmp / ckpt.METRICS, step)
        packed = {"step": step, "dtype": dtype, "versions": _versions(),
                  "cast": dtypes}  # fmt: skip
        atomic_write_text(tmp / PACKED, json.dumps(packed, indent=1))

    atomic_write_dir(write, dest)
    return step


def unpack(src: Path, out_dir: Path) -> Path | None:
    """`src` (a packed folder) into `out_dir` as its checkpoint; None when `out_dir` already
    holds a complete checkpoint of that step or a later one (it is resumed from instead)."""
    packed = _read_packed(src)
    step, dtypes = packed["step"], packed["cast"]
    own = ckpt.checkpoints(out_dir)
    if own and ckpt.checkpoint_step(own[-1]) >= step:
        return None
    source = ckpt.checkpoint_dir(Path(src), step)

    def cast(file: str) -> Cast:
        record = dtypes.get(file, {})

        def up(key: str, t: torch.Tensor) -> torch.Tensor:
            return t.to(getattr(torch, record[key])) if key in record else t

        return up

    # the curve first: a stop between the two leaves no checkpoint, so a second unpack redoes both
    metrics = Path(out_dir) / ckpt.METRICS
    if _last_step(metrics) < step:  # the carried curve, where this machine's is shorter
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        _copy_metrics(Path(src) / ckpt.METRICS, metrics, step)
    target = ckpt.checkpoint_dir(out_dir, step)
    atomic_write_dir(lambda tmp: _copy_checkpoint(source, tmp, cast), target)
    return target


def version_drift(src: Path) -> list[str]:
    """'name packed-version -> this machine's' for each package whose version differs."""
    packed, here = _read_packed(src).get("versions", {}), _versions()
    return [f"{n} {v} -> {here.get(n)}" for n, v in sorted(packed.items()) if here.get(n) != v]


def _versions() -> dict[str, str | None]:
    def of(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {name: of(name) for name in _PACKAGES}


def _read_packed(src: Path) -> dict[str, Any]:
    try:
        packed = json.loads((Path(src) / PACKED).read_text())
        packed["step"] = int(packed["step"])
        cast = packed["cast"]
        if not all(isinstance(v, dict) for v in cast.values()):
            raise TypeError("'cast' maps each file to its tensors' dtypes")
        for record in cast.values():
            for name in record.values():
                if not isinstance(getattr(torch, name, None), torch.dtype):
                    raise ValueError(f"unknown dtype {name!r}")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{src}: not a packed checkpoint ({PACKED}: {e})") from e
    return packed


def _copy_checkpoint(source: Path, target: Path, cast: Callable[[str], Cast]) -> None:
    """Every file of checkpoint `source` into `target`, the weights and the optimizer state
    through `cast(file name)`; the loadable model/ is left out (rewritten at the next save)."""
    if not (source / ckpt.TRAINER_STATE).exists():
        raise CheckpointError(f"{source}: incomplete checkpoint (no {ckpt.TRAINER_STATE})")
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir()):
        if path.name == ckpt.MODEL:
            continue
        if path.is_dir():  # e.g. FSDP's sharded state: not something this packs
            raise CheckpointError(f"{path}: a folder in a checkpoint is not packed")
        out = target / path.name
        try:
            if path.suffix == ".safetensors":
                f = cast(path.name)
                save_file({k: f(k, v).contiguous() for k, v in load_file(path).items()}, out)
            elif path.name.startswith("optimizer") and path.suffix == ".bin":
                state = torch.load(path, map_location="cpu", weights_only=True)
                torch.save(_map_tensors(state, cast(path.name), ""), out)
            else:
                shutil.copy2(path, out)
        except Exception as e:  # torch, pickle and safetensors raise many types for bad files
            raise CheckpointError(f"{path}: unreadable ({type(e).__name__}: {e})") from e


def _map_tensors(value: Any, f: Cast, key: str) -> Any:
    """`value` (an optimizer state dict) with each tensor replaced by f(its key path, it)."""
    if isinstance(value, torch.Tensor):
        return f(key, value)
    if isinstance(value, dict):
        return {k: _map_tensors(v, f, f"{key}/{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_map_tensors(v, f, f"{key}/{i}") for i, v in enumerate(value))
    return value


def _last_step(metrics: Path) -> int:
    if not metrics.exists():
        return -1
    return max((ckpt.row_step(row) for _, row in iter_jsonl(metrics)), default=-1)


def _copy_metrics(source: Path, target: Path, step: int) -> None:
    """The rows of `source` up to `step` (a run that went on past its checkpoint logged more),
    in place of `target` at once."""
    atomic_write_text(target, ckpt.metrics_up_to(source, step) if source.exists() else "")
