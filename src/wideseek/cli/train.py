"""`wideseek train sft|pack|unpack|rl|eval|ship|export-gguf`: the model's training pipeline over
wideseek.train (a checkpoint packed to carry between machines), and the trained model written
out for llama.cpp."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from wideseek.cli.common import command_group
from wideseek.cli.eval import with_eval_limits
from wideseek.errors import UsageError
from wideseek.runtime import EvalLimits

if TYPE_CHECKING:
    from rich.table import Table

    from wideseek.train.sft_plan import RoleFigures, SFTPlan

app = command_group(
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
    plan: Annotated[
        bool,
        typer.Option(
            help="Train nothing: print the examples by role and the steps and tokens the run "
            "would take (the tokenised examples stay cached for the run)."
        ),
    ] = False,
) -> None:
    """SFT on trajectories, with probe and dev evaluations; resumable. With
    `train.restart_above_gb` set, a run whose memory passes it restarts itself from its latest
    checkpoint (a new process, a fresh heap)."""
    from wideseek.config import read_yaml_tree, validate_tree
    from wideseek.train.heap import RestartToFreeMemory
    from wideseek.train.sft_run import SFTRun, plan_run, run_sft

    run = validate_tree(SFTRun, read_yaml_tree(config, overrides), config)
    if plan:
        _print_plan(plan_run(run))
        return
    try:
        final = run_sft(run, show_progress=progress)
    except RestartToFreeMemory as stop:
        typer.echo(str(stop), err=True)
        sys.stdout.flush()
        sys.stderr.flush()
        # the same command line, run again: it resumes from the checkpoint just saved
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
    typer.echo(f"final model: {final}")


@app.command()
def pack(
    run: Annotated[Path, typer.Argument(help="A trainer's out_dir, e.g. RUN/sft.")],
    dest: Annotated[Path, typer.Argument(help="Folder to write (replaced), e.g. resume/sft.")],
    dtype: Annotated[
        Literal["bf16", "fp32"],
        typer.Option(help="Type of the packed weights and optimizer moments (fp32: exact)."),
    ] = "bf16",
) -> None:
    """Pack RUN's newest checkpoint small enough to commit, for a machine that keeps nothing
    but git: its state, the weights and optimizer moments in --dtype, the metrics so far; no
    loadable model. `wideseek train unpack` puts it back into a run directory."""
    from wideseek.train.carry import pack as pack_checkpoint

    step = pack_checkpoint(run, dest, dtype)
    size = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
    typer.echo(f"packed step {step} of {run} into {dest} ({size / 1e6:.1f} MB)")


@app.command()
def unpack(
    src: Annotated[Path, typer.Argument(help="A folder written by `wideseek train pack`.")],
    run: Annotated[Path, typer.Argument(help="The trainer's out_dir to resume, e.g. RUN/sft.")],
) -> None:
    """Put a packed checkpoint into RUN, so that the same training command resumes from it;
    nothing is written when RUN already holds a checkpoint of that step or a later one."""
    from wideseek.train.carry import unpack as unpack_checkpoint
    from wideseek.train.carry import version_drift

    written = unpack_checkpoint(src, run)
    if written is None:
        typer.echo(f"{run} already holds a checkpoint as new as {src}'s: nothing unpacked")
        return
    typer.echo(f"unpacked {src} into {written}")
    drift = version_drift(src)
    if drift:  # a base converted by another transformers may differ byte for byte
        typer.echo(
            f"note: packed under other versions ({', '.join(drift)}); if the resume is "
            "refused for 'other frozen base weights', install the packed ones",
            err=True,
        )


def _figures_table(title: str, first: str, rows: list[tuple[str, RoleFigures]]) -> Table:
    from rich.table import Table

    table = Table(title=title)
    for name in (first, "examples", "tokens", "labelled tokens"):
        table.add_column(name, justify="left" if name == first else "right")
    for label, f in rows:
        table.add_row(label, f"{f.examples:,}", f"{f.tokens:,}", f"{f.labelled:,}")
    return table


def _print_plan(plan: SFTPlan) -> None:
    from rich.console import Console

    console = Console()
    console.print(
        _figures_table(
            "examples (longer than max_length left out; role limits applied)",
            "role",
            [*plan.roles.items(), ("all", plan.total)],
        )
    )
    if plan.selections:
        title = "by selection of the run file (the main one, then also:)"
        console.print(_figures_table(title, "selection", list(plan.selections.items())))
    console.print(
        f"{plan.epochs:g} epoch(s) over {plan.batches_per_epoch:,} micro-batches: "
        f"{plan.steps:,} optimizer steps, {plan.tokens:,} tokens read "
        f"({plan.processes} process{'es' if plan.processes > 1 else ''})"
    )


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
    from wideseek.train.rl.config import RLConfig
    from wideseek.train.rl.trainer import train_rl

    run = validate_tree(RLConfig, read_yaml_tree(config, overrides), config)
    final = train_rl(run, show_progress=progress)
    if run.steps == 0:
        typer.echo(f"steps=0: measured, nothing trained: {final}")
    else:
        typer.echo(f"final model: {final}")


@app.command(name="eval")
@with_eval_limits
def eval_(
    limits: EvalLimits,
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
    world: Annotated[Path | None, typer.Option(help="World dir; default: the shipped one.")] = (
        None
    ),
    engine: Annotated[
        Literal["auto", "torch", "llama.cpp"],
        typer.Option(
            help="Local engine (engine.backend): llama.cpp decodes ~3x faster on a CPU without "
            "bf16 units (docs/engines.md); auto picks it there when it is installed; the "
            "scores record the one used."
        ),
    ] = "auto",
) -> None:
    """Run a model (or the oracle, for the figure beside it) on a split's first tasks, greedy,
    and print its scores as JSON, with the number of tasks each suite was scored on
    (`wide_tasks`, `deep_tasks`), the limits they were taken under (`limits`, which `train
    ship` records as the model's recommendation) and a model's engine (`engine`). An alias of
    `wideseek eval world --suite both --json --set agent.temperature=0 --set agent.seed=0
    --set engine.backend=ENGINE --concurrency 8`, with --wide/--deep task counts; runs land in
    OUT/wide and OUT/deep."""
    from wideseek.cli.eval import world_eval
    from wideseek.config import AgentConfig, Config, EngineConfig

    if (model is None) == (not oracle):
        raise UsageError("give --model DIR or --oracle (one of them)")
    for flag, value, choices in (("split", split, ("train", "dev", "test")),
                                 ("mode", mode, ("multi", "single"))):  # fmt: skip
        if value not in choices:
            raise UsageError(f"--{flag}: expected {' | '.join(choices)}, not {value!r}")
    cfg = Config(
        agent=AgentConfig(mode=mode, temperature=0.0, seed=0),
        engine=EngineConfig(model=str(model) if model else None, backend=engine),
    )
    world_eval(
        cfg, limits, {"wide": wide, "deep": deep}, split, out=out, world_dir=world,
        oracle=oracle, reworded=reworded, concurrency=8, per_suite_dirs=True, as_json=True,
    )  # fmt: skip


WeightsDtype = Literal["bfloat16", "float16", "float32", "keep"]

REPRODUCE = """bash scripts/train_default_model.sh   # in a checkout of wideseek; or step by step:
wideseek world oracle --suite wide --split train --limit 800
wideseek world oracle --suite deep --split train --limit 1000
wideseek world oracle --suite wide --split train --limit 4000 \\
    --out runs/oracle-wide-train-multi-4000
wideseek train sft --config configs/sft-default.yaml"""


@app.command()
def ship(
    model: Annotated[Path, typer.Option(help="Trained model directory, e.g. RUN/sft/final.")],
    name: Annotated[
        str | None,
        typer.Option(help="The model's name in traces and reports (default: its directory's)."),
    ] = None,
    run: Annotated[
        Path | None,
        typer.Option(
            help="Training run directory: every phase under it (each metrics.jsonl: sft, a "
            "second stage's single/sft, rl) goes into the model card."
        ),
    ] = None,
    trained_from: Annotated[
        Path | None,
        typer.Option(
            help="The shipped model directory this one was trained on from (e.g. the package's "
            "model): the phases its wideseek.json records head the card, before --run's."
        ),
    ] = None,
    scores: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=FILE: scores JSON printed by `train eval` (repeatable); the limits they "
            "were taken under become the model's recommended limits."
        ),
    ] = None,
    max_new_tokens: Annotated[
        int | None,
        typer.Option(min=1, help="Recommended response cap (default: the scores' limit, or 512)."),
    ] = None,
    greedy: Annotated[bool, typer.Option(help="Recommend greedy decoding.")] = True,
    reproduce: Annotated[str, typer.Option(help="Commands that made it (model card).")] = (
        REPRODUCE
    ),
    dest: Annotated[
        Path | None, typer.Option(help="Where to install (default: inside the package).")
    ] = None,
    notes: Annotated[str, typer.Option(help="A paragraph for the model card.")] = "",
    weights_dtype: Annotated[
        WeightsDtype,
        typer.Option(
            help="Store the floating-point weights in this dtype ('keep': as trained). bfloat16 "
            "halves an fp32 adapter; what the rounding changes: bench/adapter_dtype.py."
        ),
    ] = "bfloat16",
    errors: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=DIR: an evaluation's output directory (`train eval --out`; repeatable) "
            "whose error analysis goes into the model card."
        ),
    ] = None,
    paired: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=A,B: two evaluations of the same tasks (e.g. held-out and template "
            "wordings: `train eval --out` directories) compared task by task in the model card, "
            "as `wideseek report A --against B` does (repeatable)."
        ),
    ] = None,
) -> None:
    """Install a trained model as the default engine of ask/eval, with a model card and the
    limits it was evaluated with (wideseek.json), which ask and eval then use by default."""
    from pydantic import ValidationError

    from wideseek.eval.report import against_lines
    from wideseek.llm.model_dir import ModelInfo, RecommendedLimits, read_model_info
    from wideseek.llm.resolved_model import resolve_model
    from wideseek.runtime import package_model_dir
    from wideseek.train.shipping import (
        data_change_notes,
        failure_lines,
        model_card,
        phase_summary,
        run_phases,
        saved_parameters,
        ship_model,
        weights_dtypes,
    )

    figures, limits, world = _read_scores(scores or [])
    # the training phases under the run that made the model, named by their directory: sft,
    # single/sft (a second stage trained on from the first), rl ...
    found = run_phases(run, model) if run else []
    phases = dict(read_model_info(resolve_model(trained_from).dir).training if trained_from else {})
    phases |= {p.parent.relative_to(run).as_posix(): phase_summary(p) for p in found}
    resolved = resolve_model(model)
    try:
        # no scores: the limits the model recommends already (kept from the model it was
        # trained on from) stay; scores state the limits they were taken under
        chosen = RecommendedLimits(**limits) if limits else resolved.limits
        info = ModelInfo(name=name or resolved.name, limits=chosen, training=phases)
    except ValidationError as e:
        raise UsageError(f"--scores: unusable limits {limits} ({e.errors()[0]['msg']})") from e
    parameters = saved_parameters(resolved)
    analyses = {}
    for item in errors or []:
        label, sep, directory = item.partition("=")
        if not sep or not label or not directory:
            raise UsageError(f"--errors: expected NAME=DIR, got {item!r}")
        try:
            analyses[label] = failure_lines(Path(directory))
        except FileNotFoundError as e:
            raise UsageError(f"--errors: {e}") from e
    comparisons = {}
    for item in paired or []:
        label, sep, both = item.partition("=")
        a, comma, b = both.partition(",")
        if not (sep and comma and label and a and b):
            raise UsageError(f"--paired: expected NAME=A,B, got {item!r}")
        try:
            # named by their folders: the card is committed, the paths are this machine's
            names = (Path(a).name or a, Path(b).name or b)
            comparisons[label] = against_lines(a, b, names, same_model=True)
        except (FileNotFoundError, ValueError) as e:
            raise UsageError(f"--paired {label}: {e}") from e
    remade = " ".join(data_change_notes(resolved.dir))
    if remade:
        notes = f"{notes}\n\n{remade}" if notes else remade
    trained = weights_dtypes(resolved)
    cast = None if weights_dtype == "keep" or trained == {weights_dtype} else weights_dtype
    if cast:
        stored = (
            f"Its weights are stored in {cast}, cast when shipped from the "
            f"{'/'.join(sorted(trained))} it was trained in; the scores below are of the model "
            "directory it was shipped from."
        )
        notes = f"{stored}\n\n{notes}" if notes else stored
    card = model_card(
        info, resolved, parameters, figures, reproduce, notes, analyses, world, comparisons
    )
    cap = max_new_tokens or info.limits.max_response_tokens or 512
    generation = {"do_sample": not greedy, "max_new_tokens": cap}
    target = dest or package_model_dir()
    names = ship_model(resolved, target, generation, card, info, cast)
    typer.echo(f"shipped {len(names)} files ({parameters:,} parameters) to {target}")


@app.command(name="export-gguf")
def export_gguf(
    out: Annotated[Path, typer.Argument(help="The GGUF file to write, e.g. wideseek.Q8_0.gguf.")],
    model: Annotated[
        str | None,
        typer.Option(
            help="A model whose base is a GGUF file: a LoRA adapter dir on the default base "
            "(e.g. RUN/sft/final), or 'default' for the bare base (default: the shipped model)."
        ),
    ] = None,
    weights: Annotated[
        Literal["q8_0", "f16", "f32"],
        typer.Option(help="Type of the weights the adapter changed (others are copied as is)."),
    ] = "q8_0",
) -> None:
    """Write the model, its LoRA adapter merged, as one GGUF file that llama.cpp runs (its
    server, Ollama, LM Studio): the base file's tokenizer and settings, the model's chat
    template, the merged weights in --weights, every weight the adapter left alone copied byte
    for byte from the base file."""
    from wideseek.llm.gguf_export import export_gguf as export
    from wideseek.runtime import shipped_model_dir

    spec = model or shipped_model_dir()
    if spec is None:
        raise UsageError("no shipped model in this install: give --model")
    summary = export(spec, out, weights)
    typer.echo(
        f"wrote {summary.path} ({summary.bytes / 1e6:.1f} MB): {summary.merged} merged weights "
        f"as {weights}, {summary.copied} copied from {summary.source.name}"
    )


def _read_scores(items: list[str]) -> tuple[dict[str, dict], dict[str, int], str | None]:
    """NAME=FILE scores files: their figures by name, the one set of limits they were all
    taken under (none when they record none) and the one world they were taken on."""
    import json

    figures: dict[str, dict] = {}
    recorded: dict[str, dict[str, Any]] = {"limits": {}, "world": {}}
    for item in items:
        name, sep, file = item.partition("=")
        try:
            figures[name] = json.loads(Path(file).read_text()) if sep else {}
        except (OSError, ValueError) as e:
            raise UsageError(f"--scores {item}: cannot read scores JSON ({e})") from e
        if not sep or not isinstance(figures[name], dict):
            raise UsageError(f"--scores {item}: expected NAME=FILE holding a JSON object")
        for key, found in recorded.items():
            if figures[name].get(key) is not None:
                found[name] = figures[name].pop(key)
    for key, what in (("limits", "limits"), ("world", "worlds")):
        distinct = {json.dumps(v, sort_keys=True) for v in recorded[key].values()}
        if len(distinct) > 1:
            raise UsageError(
                f"--scores: taken under different {what} ({', '.join(sorted(distinct))}); "
                f"a model card states one"
            )
    limits = next(iter(recorded["limits"].values()), {})
    if not isinstance(limits, dict):
        raise UsageError(f"--scores: unusable limits {limits!r}")
    return figures, limits, next(iter(recorded["world"].values()), None)
