"""A training run's files: checkpoints, trainer state, metrics and the final model.

The one on-disk layout every trainer (SFT, RL) shares, under a run's `out_dir`:
- `checkpoint-<step>/`: the accelerate state (trained weights, optimizer, scheduler, the RNG of
  every process), a loadable model under `model/`, and `trainer_state.json`, written last: a
  checkpoint without it is incomplete and never resumed from. Frozen weights are not saved
  (a LoRA run's base comes back from its source on resume): a checkpoint of the default
  recipe is 153 MB, 410 MB with its base. The state records the base's digest (`FROZEN`), so
  a resume over a base that changed at the same path is refused, not trained on silently.
- `final/`: the finished model with its `trainer_state.json`, put in place atomically (a crash
  leaves the previous final/ or none, never half of one).
- `metrics.jsonl`: one JSON row per logged step (`{"step": k, ...}`) or evaluation
  (`{"eval": {"step": k, ...}}`).

Contract:
- `checkpoints(out_dir)`: the complete checkpoints, oldest first; `prune(out_dir, keep,
  protect)` deletes all but the newest `keep` and the `protect`ed steps.
- `save_checkpoint(accelerator, out_dir, step, write_model, state, keep, protect)`: called by
  every process; the main one then writes the model and the state (last) and prunes.
- `read_state(path, required)` reads a checkpoint's (or final/'s) trainer state;
  `restore(accelerator, path, check, frozen)` reads it, lets the trainer `check` it, refuses
  it when it was trained over other frozen weights than `frozen`, and loads the accelerate
  state. Both raise `CheckpointError`, one line naming the checkpoint, when it is
  missing, incomplete or corrupt.
- `truncate_metrics(path, step)`: drops rows logged after `step` (the run died after its last
  checkpoint), so a resumed run's curve has no duplicates.
- `write_final(out_dir, write_model, state)`: final/ with its state, atomically.

What a trainer keeps in its state beyond `step` is the trainer's business; this module knows
files and accelerate's save/load, not training.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from safetensors import safe_open

from wideseek.errors import WideseekError
from wideseek.io import append_jsonl_line, atomic_write_dir, atomic_write_text, iter_jsonl

TRAINER_STATE = "trainer_state.json"
METRICS = "metrics.jsonl"
FINAL = "final"
MODEL = "model"  # a checkpoint's loadable model
FROZEN = "frozen_weights"  # state key: the digest of the weights a run keeps frozen (unsaved)
DATA_CHANGES = "data_changes"  # state key: [{"step": resumed at, "from": old data signature}]
_PREFIX = "checkpoint-"

WriteModel = Callable[[Path], object]  # fills a new directory with a loadable model


class CheckpointError(WideseekError, RuntimeError):
    """A checkpoint that cannot be resumed from (missing, incomplete or corrupt)."""


def checkpoint_dir(out_dir: Path, step: int) -> Path:
    return Path(out_dir) / f"{_PREFIX}{step}"


def checkpoint_step(path: Path) -> int:
    """The step a checkpoint directory was saved at."""
    return int(path.name.removeprefix(_PREFIX))


def checkpoints(out_dir: Path) -> list[Path]:
    """Complete checkpoints (with trainer_state.json), oldest first."""
    found = [
        p
        for p in Path(out_dir).glob(f"{_PREFIX}*")
        if p.name.removeprefix(_PREFIX).isdigit() and (p / TRAINER_STATE).exists()
    ]
    return sorted(found, key=checkpoint_step)


def prune(out_dir: Path, keep: int, protect: Collection[int | None] = ()) -> None:
    """Delete all complete checkpoints but the newest `keep` and those of the `protect`ed steps
    (RL's last good one: a rollback needs it)."""
    found = checkpoints(out_dir)
    for old in found[: max(len(found) - keep, 0)]:
        if checkpoint_step(old) not in protect:
            shutil.rmtree(old, ignore_errors=True)


def write_state(path: Path, state: Mapping[str, Any]) -> None:
    atomic_write_text(Path(path) / TRAINER_STATE, json.dumps(state, indent=2))


def read_state(path: Path, required: Collection[str] = ("step",)) -> dict[str, Any]:
    """`path`'s trainer state; the `required` keys are integers."""
    try:
        state = json.loads((Path(path) / TRAINER_STATE).read_text())
        for key in required:
            state[key] = int(state[key])
    except (OSError, ValueError, KeyError, TypeError) as e:
        why = f"{type(e).__name__}: {e}" if isinstance(e, KeyError) else str(e)
        raise CheckpointError(f"{path}: unreadable {TRAINER_STATE} ({why})") from e
    return state


def save_checkpoint(
    accelerator: Any,
    out_dir: Path,
    step: int,
    write_model: WriteModel,
    state: Mapping[str, Any],
    keep: int,
    protect: Collection[int | None] = (),
) -> Path:
    """Called by every process: accelerate saves each one's RNG state (and, under FSDP or
    DeepSpeed, its shard); the main process then writes the model, the state (which completes
    the checkpoint) and prunes the older ones."""
    path = checkpoint_dir(out_dir, step)
    hook = accelerator.register_save_state_pre_hook(_drop_frozen_weights)
    try:
        accelerator.save_state(str(path))
    finally:
        hook.remove()
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        atomic_write_dir(write_model, path / MODEL)  # a crashed save's leftovers go
        write_state(path, state)
        prune(out_dir, keep, protect)
    return path


def restore(
    accelerator: Any,
    path: Path,
    required: Collection[str] = ("step",),
    check: Callable[[dict[str, Any]], None] | None = None,
    frozen: str | None = None,
) -> dict[str, Any]:
    """Load checkpoint `path` into `accelerator`'s prepared objects; returns its trainer state.
    `check(state)` raises `CheckpointError` when the checkpoint does not fit this run; so does
    a `FROZEN` digest other than `frozen`, this run's (a checkpoint without one predates it)."""
    state = read_state(path, required)
    if check is not None:
        check(state)
    saved = state.get(FROZEN)
    if saved is not None and frozen is not None and saved != frozen:
        raise CheckpointError(
            f"{path}: trained over other frozen base weights (digest {saved[:12]} there, "
            f"{frozen[:12]} now): the base model changed at its path; use a new out_dir"
        )
    hook = accelerator.register_load_state_pre_hook(_require_trained_weights)
    try:
        # strict=False: the frozen weights are not in the file (the hook checks the trained ones)
        accelerator.load_state(str(path), strict=False)
    except CheckpointError:
        raise
    except Exception as e:  # accelerate/torch/safetensors raise many types for bad files
        raise CheckpointError(
            f"{path}: cannot resume ({type(e).__name__}: {e}); delete it to resume from an "
            "earlier checkpoint"
        ) from e
    finally:
        hook.remove()
    return state


def _frozen(model: Any) -> list[str]:
    return [n for n, p in model.named_parameters(remove_duplicate=False) if not p.requires_grad]


def _drop_frozen_weights(models: list[Any], weights: list[dict[str, Any]], _out: str) -> None:
    """accelerate's save_state pre-hook: each model's saved state keeps what training changes
    (its trained parameters and buffers); frozen parameters are loaded from the model's source
    on resume (for a LoRA run the whole base, 308 MB of the default model's 410 MB)."""
    for model, state in zip(models, weights, strict=False):  # FSDP/DeepSpeed: none here
        for name in _frozen(model):
            state.pop(name, None)


def _require_trained_weights(models: list[Any], input_dir: str) -> None:
    """accelerate's load_state pre-hook: the checkpoint holds every trained parameter of each
    model (loading is not strict, since frozen ones are absent: a checkpoint of another setup,
    e.g. full fine-tuning against LoRA, would otherwise load partly and silently)."""
    for i, model in enumerate(models):
        file = Path(input_dir) / f"model{f'_{i}' if i else ''}.safetensors"
        if not file.exists():
            continue  # accelerate's own error names the missing file
        with safe_open(str(file), "pt") as f:
            saved = set(f.keys())
        frozen = set(_frozen(model))
        missing = [n for n, _ in model.named_parameters() if n not in frozen and n not in saved]
        if missing:
            raise CheckpointError(
                f"{input_dir}: lacks {len(missing)} of this run's trained weights (first: "
                f"{missing[0]}): saved by another model setup; delete it or change out_dir"
            )


def truncate_metrics(path: Path, step: int) -> None:
    """Drop rows logged after `step`, and a torn last line with them."""
    if not path.exists():
        return
    atomic_write_text(path, metrics_up_to(path, step))


def metrics_up_to(path: Path, step: int) -> str:
    """The text of metrics file `path` without the rows logged after `step` (nor a torn line)."""
    return "".join(json.dumps(row) + "\n" for _, row in iter_jsonl(path) if row_step(row) <= step)


def row_step(row: Mapping[str, Any]) -> int:
    """The step a metrics row belongs to (a logged step's, or an evaluation's)."""
    return int(row.get("step", row.get("eval", {}).get("step", 0)))


def append_metrics(out_dir: Path, row: Mapping[str, Any]) -> None:
    append_jsonl_line(Path(out_dir) / METRICS, json.dumps(row))


def write_final(out_dir: Path, write_model: WriteModel, state: Mapping[str, Any]) -> Path:
    """`out_dir/final`: the model `write_model` writes, with `state`, in place atomically."""

    def write(tmp: Path) -> None:
        write_model(tmp)
        write_state(tmp, state)

    final = Path(out_dir) / FINAL
    atomic_write_dir(write, final)
    return final
