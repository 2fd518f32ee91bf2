"""`wideseek train sft|rl|eval|ship`: the model's training pipeline over wideseek.train."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wideseek.errors import UsageError

app = typer.Typer(
    help="Train the model: LoRA SFT of SmolLM2-135M, multi-agent RL, dev evaluation, shipping.",
    no_args_is_help=True,
)


@app.command()
def sft(
    config: Annotated[Path, typer.Option(help="Run file (YAML), e.g. configs/sft-default.yaml.")],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="key=value overrides, e.g. train.lr=1e-3")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """SFT on trajectories, with probe and dev evaluations; resumable."""
    from wideseek.config import read_yaml_tree, validate_tree
    from wideseek.train.sft_run import SFTRun, run_sft

    run = validate_tree(SFTRun, read_yaml_tree(config, overrides), config)
    final = run_sft(run, show_progress=progress)
    typer.echo(f"final model: {final}")


@app.command()
def rl(
    config: Annotated[
        Path, typer.Option(help="Run file (YAML), e.g. configs/rl-cpu.yaml or rl-published.yaml.")
    ],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="key=value overrides, e.g. steps=40 lr=2e-5")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Multi-agent RL (GRPO with one advantage per rollout shared by the lead and every
    subagent): rollouts of the policy through the runtime, shaped outcome rewards, one weighted
    clipped update per step; metrics.jsonl per step; resumable; stops with one line when a
    collapse guard trips, rolled back to the last good checkpoint."""
    from wideseek.config import read_yaml_tree, validate_tree
    from wideseek.train.rl.trainer import RLConfig, train_rl

    run = validate_tree(RLConfig, read_yaml_tree(config, overrides), config)
    final = train_rl(run, show_progress=progress)
    typer.echo(f"final model: {final}")


@app.command(name="eval")
def eval_(
    out: Annotated[Path, typer.Option(help="Run directory for trajectories and results.")],
    model: Annotated[Path | None, typer.Option(help="Model directory (HF format).")] = None,
    oracle: Annotated[
        bool, typer.Option("--oracle", help="Score the world's oracle instead of a model.")
    ] = False,
    wide: Annotated[int, typer.Option(min=0, help="First N wide tasks of the split.")] = 30,
    deep: Annotated[int, typer.Option(min=0, help="First N deep tasks of the split.")] = 30,
    split: Annotated[str, typer.Option(help="train | dev | test")] = "dev",
    mode: Annotated[str, typer.Option(help="multi | single")] = "multi",
    reworded: Annotated[
        bool, typer.Option("--reworded", help="Ask in held-out wordings, never trained on.")
    ] = False,
    context_length: Annotated[int, typer.Option(min=256, help="Tokens per agent.")] = 4096,
    max_response_tokens: Annotated[int, typer.Option(min=1, help="Per generation.")] = 512,
    lead_turns: Annotated[int, typer.Option(min=1, help="Turns of the lead.")] = 10,
    subagent_turns: Annotated[int, typer.Option(min=1, help="Turns of each subagent.")] = 20,
    world: Annotated[Path | None, typer.Option(help="World dir; default: the shipped one.")] = (
        None
    ),
) -> None:
    """Run a model (or the oracle, for the figure beside it) on a split's first tasks through
    the runtime, greedy, and print its scores as JSON."""
    import json

    from pydantic import ValidationError

    from wideseek.llm.model_dir import require_model_dir
    from wideseek.train.dev_eval import DevEvalSettings, dev_eval, oracle_eval

    if (model is None) == (not oracle):
        raise UsageError("give --model DIR or --oracle (one of them)")
    if model is not None:
        require_model_dir(model)
    agent = {
        "temperature": 0.0,
        "seed": 0,
        "context_length": context_length,
        "max_response_tokens": max_response_tokens,
        "lead_turns": lead_turns,
        "subagent_turns": subagent_turns,
    }
    try:
        settings = DevEvalSettings(
            world=str(world) if world else None,
            split=split,
            wide_tasks=wide,
            deep_tasks=deep,
            mode=mode,
            reworded=reworded,
            agent=agent,
        )
    except ValidationError as e:
        err = e.errors()[0]
        raise UsageError(f"--{err['loc'][0]}: {err['msg']}") from e
    scores = oracle_eval(settings, out) if model is None else dev_eval(model, settings, out)
    typer.echo(json.dumps(scores, indent=2))


REPRODUCE = """bash scripts/train_default_model.sh   # in a checkout of wideseek; or step by step:
wideseek world oracle --suite wide --split train --limit 400
wideseek world oracle --suite deep --split train --limit 600
wideseek train sft --config configs/sft-default.yaml"""


@app.command()
def ship(
    model: Annotated[Path, typer.Option(help="Trained model directory, e.g. RUN/sft/final.")],
    run: Annotated[
        Path | None, typer.Option(help="SFT run directory: its phases go into the model card.")
    ] = None,
    scores: Annotated[
        list[str] | None,
        typer.Option(help="NAME=FILE: scores JSON printed by `train eval` (repeatable)."),
    ] = None,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Recommended response cap.")] = 512,
    greedy: Annotated[bool, typer.Option(help="Recommend greedy decoding.")] = True,
    reproduce: Annotated[str, typer.Option(help="Commands that made it (model card).")] = (
        REPRODUCE
    ),
    dest: Annotated[
        Path | None, typer.Option(help="Where to install (default: inside the package).")
    ] = None,
    notes: Annotated[str, typer.Option(help="A paragraph for the model card.")] = "",
) -> None:
    """Install a trained model as the default engine of ask/eval, with a model card."""
    import json

    from wideseek.runtime import SHIPPED_MODEL_NAME, package_model_dir
    from wideseek.train.shipping import model_card, phase_summary, saved_parameters, ship_model

    figures: dict[str, dict] = {}
    for item in scores or []:
        name, sep, file = item.partition("=")
        try:
            figures[name] = json.loads(Path(file).read_text()) if sep else {}
        except (OSError, ValueError) as e:
            raise UsageError(f"--scores {item}: cannot read scores JSON ({e})") from e
        if not sep or not isinstance(figures[name], dict):
            raise UsageError(f"--scores {item}: expected NAME=FILE holding a JSON object")
    phases = (
        {p.parent.name: phase_summary(p) for p in sorted(run.glob("*/metrics.jsonl"))}
        if run
        else {}
    )
    try:
        adapter = model / "adapter_config.json"
        config = json.loads((adapter if adapter.is_file() else model / "config.json").read_text())
        parameters = saved_parameters(model)
    except (OSError, ValueError) as e:
        raise UsageError(f"{model}: not a model directory ({e})") from e
    card = model_card(SHIPPED_MODEL_NAME, config, parameters, phases, figures, reproduce, notes)
    generation = {"do_sample": not greedy, "max_new_tokens": max_new_tokens}
    target = dest or package_model_dir()
    names = ship_model(model, target, generation, card)
    typer.echo(f"shipped {len(names)} files ({parameters:,} parameters) to {target}")
