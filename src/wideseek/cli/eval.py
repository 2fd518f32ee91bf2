"""`wideseek eval widesearch|qa|world|sweep`: run the agents on a benchmark and score every run.

Every sub-command writes a run directory (`--out`): run.json (settings), trajectories.jsonl
and results.jsonl, appended atomically one (task, trial) at a time. Re-running the same command
skips what is done, so a killed run loses at most the items in flight. `wideseek report DIR`
turns run directories into a markdown report with plots.

`eval world` is the one command that runs the agents (a model, a server, or the world's oracle)
on the offline world (`runtime.run_world`, under its one set of evaluation limits); `train
eval` is an alias of it (both suites, greedy, scores as JSON). `eval sweep` runs it at several
widths, with single-agent runs beside them at an equal token budget (`cli/sweep.py`).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from wideseek.cli.common import command_group, note_default_engine
from wideseek.cli.options import (
    LenientTablesOpt,
    build_config,
    flag_group,
    flags_of,
    with_judge,
    with_run_config,
)
from wideseek.config import AgentConfig, Config
from wideseek.errors import UsageError
from wideseek.eval.judge_client import ChatCompleter
from wideseek.eval.judges import Judge, OfflineJudge
from wideseek.eval.qa_data import load_qa_tasks
from wideseek.eval.widesearch_data import load_widesearch_tasks
from wideseek.llm.engine import Engine
from wideseek.runtime import (
    EVAL_LIMITS,
    EvalLimits,
    SuiteRun,
    WorldRun,
    run_name,
    run_suite,
    run_world,
    select_tasks,
    world_tasks,
)
from wideseek.types import Task
from wideseek.world.suites import Split, Suite

app = command_group(
    help="Run the agents on a benchmark N times, score, and keep every trajectory.",
    no_args_is_help=True,
)

TrialsOpt = Annotated[int, typer.Option("--trials", min=1, help="runs per task (Avg@N, Pass@N)")]
OutOpt = Annotated[
    Path | None, typer.Option("--out", help="run directory (default: runs/<suite>-<mode>)")
]
LanguageOpt = Annotated[str | None, typer.Option("--language", help="only tasks in: en | zh")]
IdsOpt = Annotated[str | None, typer.Option("--ids", help="only these task ids (comma-separated)")]
LimitOpt = Annotated[int | None, typer.Option("--limit", min=1, help="only the first N tasks")]
ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", min=1, help="tasks in flight")]


@dataclass(frozen=True)
class TaskChoice:
    """Which of a benchmark's tasks to run: one language, named ids, the first N."""

    language: str | None = None
    ids: str | None = None
    limit: int | None = None

    def apply(self, tasks: list[Task]) -> list[Task]:
        return select_tasks(tasks, self.language, self.ids, self.limit)


# `choice: TaskChoice` for the commands that run some of a benchmark's tasks.
with_task_choice = flag_group(
    {"language": (LanguageOpt, None), "ids": (IdsOpt, None), "limit": (LimitOpt, None)},
    TaskChoice,
    "choice",
)


def _print_summary(title: str, summary: dict[str, float]) -> None:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    Console().print(table)


def evaluate(
    tasks: list[Task],
    suite: str,
    cfg: Config,
    out: Path | None,
    trials: int,
    concurrency: int,
    judge: tuple[Judge, ChatCompleter | None] | None = None,
    engine: Engine | None = None,
    lenient_tables: bool = False,
) -> SuiteRun:
    """Run, score, print the summary; shared by every `eval` sub-command."""
    out = out or Path("runs") / f"{suite}-{cfg.agent.mode}"
    chosen, completer = judge or (OfflineJudge(), None)
    if engine is None:
        note_default_engine(cfg)

    async def go() -> SuiteRun:
        try:
            return await run_suite(
                tasks, cfg, out, suite=suite, engine=engine, trials=trials, judge=chosen,
                lenient_tables=lenient_tables, concurrency=concurrency,
            )  # fmt: skip
        finally:
            if completer is not None:
                await completer.aclose()

    run = asyncio.run(go())
    _print_summary(f"{suite}: {len(run.rows)} runs in {out}", run.summary)
    return run


@app.command("widesearch")
@with_run_config
@with_judge
@with_task_choice
def widesearch(
    cfg: Config,
    judge: tuple[Judge, ChatCompleter | None],
    choice: TaskChoice,
    tasks: Annotated[Path, typer.Option(help="WideSearch task file (widesearch.jsonl)")],
    gold_dir: Annotated[Path, typer.Option(help="directory of <instance_id>.csv gold tables")],
    trials: TrialsOpt = 1,
    out: OutOpt = None,
    concurrency: ConcurrencyOpt = 4,
    lenient_tables: LenientTablesOpt = False,
) -> None:
    """Run the WideSearch benchmark (or any file in its format) and score it like the official
    evaluator: item/row F1, success; Avg@N / Max@N / Pass@N over --trials."""
    loaded = load_widesearch_tasks(tasks)
    for t in loaded:
        t.metadata["gold"] = str(gold_dir / f"{t.id}.csv")
    selected = choice.apply(loaded)
    missing = [t.id for t in selected if not Path(t.metadata["gold"]).is_file()]
    if missing:  # before any agent runs: a wrong --gold-dir would score every run 0
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise UsageError(f"{gold_dir}: no gold table for {len(missing)} task(s): {shown}")
    evaluate(
        selected, tasks.stem, cfg, out, trials, concurrency, judge, lenient_tables=lenient_tables
    )


@app.command("qa")
@with_run_config
def qa(
    cfg: Config,
    data: Annotated[Path, typer.Option("--data", help="JSONL: question, golden_answers[, id]")],
    trials: TrialsOpt = 1,
    out: OutOpt = None,
    ids: IdsOpt = None,
    limit: LimitOpt = None,
    concurrency: ConcurrencyOpt = 4,
) -> None:
    """Run open-domain QA (NQ, HotpotQA, ... in the usual question/golden_answers format) and
    score exact match and token F1 of the extracted short answer."""
    selected = select_tasks(load_qa_tasks(data), None, ids, limit)
    evaluate(selected, data.stem, cfg, out, trials, concurrency)


# --- the offline world -------------------------------------------------------------------------
WorldSuite = Literal["wide", "deep", "both"]


def _limit_flag(name: str) -> tuple[Any, None]:
    """The flag of one `EvalLimits` field, from the field itself: `--<name>`, its floor, its
    description, and the default a run falls back to."""
    field = EvalLimits.model_fields[name]
    floor = next(m.ge for m in field.metadata if hasattr(m, "ge"))
    default = EVAL_LIMITS.given().get(name, AgentConfig.model_fields[name].default)
    what = field.description or name
    option = typer.Option(
        "--" + name.replace("_", "-"),
        min=floor,
        help=f"{what[:1].upper()}{what[1:]}. Default: --set agent.{name}, else the model's "
        f"recommendation (wideseek.json)" + ("." if default is None else f", else {default}."),
    )
    return Annotated[int | None, option], None


# `limits: EvalLimits` for the commands that run the agents on the world: a flag a field.
with_eval_limits = flag_group(
    {name: _limit_flag(name) for name in EvalLimits.model_fields},
    lambda **flags: EvalLimits(**flags),
    "limits",
)
WorldDirOpt = Annotated[
    Path | None, typer.Option("--world", help="a built world dir (default: the bundled world)")
]
OracleOpt = Annotated[
    bool, typer.Option("--oracle", help="play the world's oracle instead of a model")
]
RewordedOpt = Annotated[
    bool, typer.Option("--reworded", help="ask in held-out wordings that no training task uses")
]


def world_eval(
    cfg: Config,
    limits: EvalLimits,
    suites: dict[str, int | None],
    split: str,
    *,
    out: Path | None = None,
    world_dir: Path | None = None,
    oracle: bool = False,
    reworded: bool = False,
    trials: int = 1,
    language: str | None = None,
    ids: str | None = None,
    concurrency: int = 4,
    per_suite_dirs: bool = False,
    as_json: bool = False,
    show_progress: bool = True,
) -> WorldRun:
    """Run `eval world` (and its alias `train eval`): the first N tasks of each suite (None:
    all; 0: skipped), scored offline, then its scores printed, as a table or as JSON (then
    without a progress bar, so that stdout holds the JSON alone)."""
    from wideseek.world.store import load_world

    if ids and len(suites) > 1:
        raise UsageError("--ids names tasks of one suite: give --suite wide or --suite deep")
    loaded = load_world(world_dir)
    tasks = {
        suite: world_tasks(
            loaded, suite, split, language=language, ids=ids, limit=n, reworded=reworded
        )
        for suite, n in suites.items()
        if n != 0
    }
    label = next(iter(suites)) if len(suites) == 1 else "both"
    default_out = f"{run_name(label, split, reworded)}-{cfg.agent.mode}{'-oracle' * oracle}"
    out = out or Path("runs") / default_out
    if not oracle:
        note_default_engine(cfg)
    run = asyncio.run(
        run_world(loaded, tasks, out, split=split, config=cfg, limits=limits, oracle=oracle,
                  reworded=reworded, per_suite_dirs=per_suite_dirs, trials=trials,
                  concurrency=concurrency, judge=OfflineJudge(),
                  show_progress=show_progress)  # on stderr: stdout holds the JSON alone
    )  # fmt: skip
    if as_json:
        world = loaded.manifest.world_hash[:16]
        # how many tasks each figure is over: a model card states it beside the figures, and a
        # script that keeps scores (scripts/score.sh) reuses only those of its own counts
        counts = {f"{suite}_tasks": len(picked) for suite, picked in tasks.items()}
        figures = {**run.metrics(), **counts, "limits": run.limits, "world": world}
        if not oracle:  # a model's figures are its engine's: llama.cpp rounds otherwise
            figures["engine"] = run.engine or "server"
        typer.echo(json.dumps(figures, indent=2))
        return run
    for suite, suite_run in run.runs.items():
        where = out / suite if per_suite_dirs else out
        title = f"{run_name(suite, split, reworded)}: {len(suite_run.rows)} runs in {where}"
        _print_summary(title, suite_run.summary)
    limits_text = ", ".join(f"{k} {v}" for k, v in run.limits.items())
    Console(stderr=True).print(f"limits: {limits_text}", style="dim")
    return run


@app.command("world")
@with_run_config
@with_eval_limits
@with_task_choice
def world(
    cfg: Config,
    limits: EvalLimits,
    choice: TaskChoice,
    suite: Annotated[
        WorldSuite, typer.Option(help="wide tables, deep QA, or both (one sub-directory each)")
    ] = "wide",
    split: Annotated[Split, typer.Option(help="task split")] = "dev",
    world_dir: WorldDirOpt = None,
    oracle: OracleOpt = False,
    reworded: RewordedOpt = False,
    trials: TrialsOpt = 1,
    out: OutOpt = None,
    concurrency: ConcurrencyOpt = 4,
    json_out: Annotated[
        bool, typer.Option("--json", help="print the scores as JSON (train eval's format)")
    ] = False,
) -> None:
    """Run a task suite of the bundled offline world (searching its corpus), scored with the
    offline judge: item F1 / row F1 / success for wide tables, EM / F1 for deep QA. --oracle
    runs the world's oracle under the same settings and limits: the ceiling a model's figures
    stand by. --reworded asks the same tasks in held-out words (world/reworded.py). The agents
    run under one set of evaluation limits (the flags below, else the model's own
    recommendation, else the defaults shown); `train eval` is this command on both suites,
    greedy, with --json."""
    n = choice.limit
    suites = {"wide": n, "deep": n} if suite == "both" else {suite: n}
    world_eval(
        cfg, limits, suites, split, out=out, world_dir=world_dir, oracle=oracle,
        reworded=reworded, trials=trials, language=choice.language, ids=choice.ids,
        concurrency=concurrency,
        per_suite_dirs=suite == "both", as_json=json_out,
    )  # fmt: skip


# --- the width sweep ---------------------------------------------------------------------------
# `cfg: Config` for the sweep: the run flags less --mode and --subagents, which the sweep sets.
with_sweep_config = flag_group(
    flags_of(build_config, leave_out=("mode", "subagents")), build_config, "cfg"
)


@app.command("sweep")
@with_sweep_config
@with_eval_limits
@with_task_choice
def sweep(
    cfg: Config,
    limits: EvalLimits,
    choice: TaskChoice,
    subagents: Annotated[
        str, typer.Option("--subagents", help="widths to run, comma-separated, e.g. 1,2,4,8")
    ],
    suite: Annotated[Suite, typer.Option(help="wide tables or deep QA")] = "wide",
    split: Annotated[Split, typer.Option(help="task split")] = "dev",
    world_dir: WorldDirOpt = None,
    oracle: OracleOpt = False,
    reworded: RewordedOpt = False,
    single: Annotated[
        bool, typer.Option(help="run a single agent beside each width at an equal token budget")
    ] = True,
    trials: TrialsOpt = 1,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="sweep directory (default: runs/sweep-world-<suite>-<split>)"),
    ] = None,
    concurrency: ConcurrencyOpt = 4,
) -> None:
    """The width sweep: the same world tasks multi-agent at each width (most subagents per lead
    call) in OUT/multi-w<N>, each beside a single agent at an equal token budget in
    OUT/single-w<N> (its context is the tokens the multi-agent run's agents held per task),
    then one table and one plot: OUT/sweep.md, sweep.json, sweep.png (needs matplotlib).
    Resumable: run it again to finish it, or with more widths to add them."""
    from wideseek.runtime.width_sweep import (
        SWEEP_MD,
        SWEEP_PNG,
        parse_widths,
        plot_skipped,
        run_width_sweep,
        sweep_table,
    )
    from wideseek.world.store import load_world

    widths = parse_widths(subagents)
    loaded = load_world(world_dir)
    tasks = world_tasks(
        loaded,
        suite,
        split,
        language=choice.language,
        ids=choice.ids,
        limit=choice.limit,
        reworded=reworded,
    )
    out = out or Path("runs") / f"sweep-{run_name(suite, split, reworded)}"
    if not oracle:
        note_default_engine(cfg)
    rows = asyncio.run(
        run_width_sweep(
            loaded, suite, tasks, out, widths, split=split, config=cfg, limits=limits,
            oracle=oracle, single=single, reworded=reworded, trials=trials,
            concurrency=concurrency,
        )
    )  # fmt: skip
    typer.echo("\n".join(sweep_table(suite, rows)))
    if not (out / SWEEP_PNG).exists():
        typer.echo(plot_skipped(), err=True)
    typer.echo(f"report → {out / SWEEP_MD}")
