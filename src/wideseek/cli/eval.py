"""`wideseek eval widesearch|qa|world`: run the agents on a benchmark N times and score every run.

Every sub-command writes a run directory (`--out`): run.json (settings), trajectories.jsonl
and results.jsonl, appended atomically one (task, trial) at a time. Re-running the same command
skips what is done, so a killed run loses at most the items in flight. `wideseek report DIR`
turns run directories into a markdown report with plots.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from wideseek.cli.common import note_default_engine
from wideseek.cli.options import LenientTablesOpt, with_judge, with_run_config
from wideseek.config import Config
from wideseek.errors import UsageError
from wideseek.eval.judge_client import ChatCompleter
from wideseek.eval.judges import Judge, OfflineJudge
from wideseek.eval.qa_data import load_qa_tasks
from wideseek.eval.widesearch_data import load_widesearch_tasks
from wideseek.llm.base import Engine
from wideseek.runtime import SuiteRun, run_suite, select_tasks
from wideseek.types import Task
from wideseek.world.suites import Split, Suite

app = typer.Typer(
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
def widesearch(
    cfg: Config,
    judge: tuple[Judge, ChatCompleter | None],
    tasks: Annotated[Path, typer.Option(help="WideSearch task file (widesearch.jsonl)")],
    gold_dir: Annotated[Path, typer.Option(help="directory of <instance_id>.csv gold tables")],
    trials: TrialsOpt = 1,
    out: OutOpt = None,
    language: LanguageOpt = None,
    ids: IdsOpt = None,
    limit: LimitOpt = None,
    concurrency: ConcurrencyOpt = 4,
    lenient_tables: LenientTablesOpt = False,
) -> None:
    """Run the WideSearch benchmark (or any file in its format) and score it like the official
    evaluator: item/row F1, success; Avg@N / Max@N / Pass@N over --trials."""
    loaded = load_widesearch_tasks(tasks)
    for t in loaded:
        t.metadata["gold"] = str(gold_dir / f"{t.id}.csv")
    selected = select_tasks(loaded, language, ids, limit)
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


@app.command("world")
@with_run_config
def world(
    cfg: Config,
    suite: Annotated[Suite, typer.Option(help="wide tables or deep QA")] = "wide",
    split: Annotated[Split, typer.Option(help="task split")] = "dev",
    world_dir: Annotated[
        Path | None, typer.Option("--world", help="a built world dir (default: the bundled world)")
    ] = None,
    oracle: Annotated[
        bool, typer.Option("--oracle", help="play the world's oracle instead of a model")
    ] = False,
    reworded: Annotated[
        bool,
        typer.Option("--reworded", help="ask in held-out wordings that no training task uses"),
    ] = False,
    trials: TrialsOpt = 1,
    out: OutOpt = None,
    language: LanguageOpt = None,
    ids: IdsOpt = None,
    limit: LimitOpt = None,
    concurrency: ConcurrencyOpt = 4,
) -> None:
    """Run a task suite of the bundled offline world (searching its corpus), scored with the
    offline judge: item F1 / row F1 / success for wide tables, EM / F1 for deep QA. --oracle
    runs the world's oracle under the same settings: the ceiling a model's figures stand by.
    --reworded asks the same tasks in held-out words (world/reworded.py)."""
    from wideseek.world.store import load_world
    from wideseek.world.suites import suite_tasks

    w = load_world(world_dir)
    if not (cfg.tools.corpus or cfg.tools.retrieval_url or cfg.tools.web):  # its own pages
        cfg.tools.corpus = str(w.corpus_path)
    selected = select_tasks(suite_tasks(w, suite, split), language, ids, limit)
    if reworded:
        from wideseek.world.reworded import reword

        selected = [reword(t) for t in selected]
    engine = None
    if oracle:
        from wideseek.world.oracle import OracleEngine

        engine = OracleEngine(selected, cfg.agent)
    name = f"world-{suite}-{split}{'-reworded' if reworded else ''}"
    default_out = Path("runs") / f"{name}-{cfg.agent.mode}{'-oracle' if oracle else ''}"
    evaluate(selected, name, cfg, out or default_out, trials, concurrency, engine=engine)
