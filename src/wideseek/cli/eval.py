"""`wideseek eval widesearch|qa|world`: run the agents on a benchmark N times and score every run.

Every sub-command writes a run directory (`--out`): run.json (settings), trajectories.jsonl
and results.jsonl, appended atomically one (task, trial) at a time. Re-running the same command
skips what is done, so a killed run loses at most the items in flight. `wideseek report DIR`
turns run directories into a markdown report with plots.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from wideseek.cli.common import UserError, note_default_engine
from wideseek.cli.options import (
    with_judge,
    with_run_config,
)
from wideseek.config import Config
from wideseek.eval.judge_client import ChatCompleter
from wideseek.eval.judges import Judge, OfflineJudge
from wideseek.eval.report import summarize
from wideseek.eval.runner import ResultRow, RunInfo, run_benchmark
from wideseek.eval.task_scoring import TaskScorer
from wideseek.eval.widesearch_data import load_widesearch_tasks
from wideseek.runtime import open_orchestrator
from wideseek.types import Task

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


def select(
    tasks: list[Task], language: str | None, ids: str | None, limit: int | None
) -> list[Task]:
    """Filter by language and id (unknown ids are an error), then keep the first `limit`."""
    if language:
        tasks = [t for t in tasks if t.language == language]
    if ids:
        wanted = [i.strip() for i in ids.split(",") if i.strip()]
        known = {t.id for t in tasks}
        unknown = [i for i in wanted if i not in known]
        if unknown:
            raise UserError(f"unknown task ids: {', '.join(unknown[:5])}")
        tasks = [t for t in tasks if t.id in set(wanted)]
    tasks = tasks[:limit] if limit else tasks
    if not tasks:
        raise UserError("no tasks left after filtering")
    return tasks


def _print_summary(title: str, rows: list[ResultRow]) -> None:
    figures = summarize(rows)
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    Console().print(table)


async def _run(
    tasks: list[Task], cfg: Config, suite: str, out: Path, trials: int, judge: Judge,
    concurrency: int,
) -> list[ResultRow]:  # fmt: skip
    note_default_engine(cfg)
    async with open_orchestrator(cfg) as orchestrator:
        cfg = cfg.model_copy(update={"agent": orchestrator.config})  # with the model's defaults
        info = RunInfo(
            suite=suite,
            mode=cfg.agent.mode,
            profile=cfg.agent.profile,
            model=getattr(orchestrator.engine, "model_name", "") or "",
            trials=trials,
            max_subagents=cfg.agent.max_subagents if cfg.agent.mode == "multi" else None,
            extra={"config": json.loads(cfg.model_dump_json(exclude={"engine": {"api_key_env"}}))},
        )
        headline = "em" if tasks[0].kind == "qa" else "item_f1"
        try:
            return await run_benchmark(
                tasks, orchestrator.run, TaskScorer(judge), out, info, concurrency, headline
            )
        except ValueError as e:  # a run directory holding other settings
            raise UserError(str(e)) from e


def evaluate(
    tasks: list[Task],
    suite: str,
    cfg: Config,
    out: Path | None,
    trials: int,
    concurrency: int,
    judge: tuple[Judge, ChatCompleter | None] | None = None,
) -> None:
    """Run, score, print the summary; shared by every `eval` sub-command."""
    out = out or Path("runs") / f"{suite}-{cfg.agent.mode}"
    chosen, completer = judge or (OfflineJudge(), None)

    async def go() -> list[ResultRow]:
        try:
            return await _run(tasks, cfg, suite, out, trials, chosen, concurrency)
        finally:
            if completer is not None:
                await completer.aclose()

    rows = asyncio.run(go())
    _print_summary(f"{suite}: {len(rows)} runs in {out}", rows)


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
) -> None:
    """Run the WideSearch benchmark (or any file in its format) and score it like the official
    evaluator: item/row F1, success; Avg@N / Max@N / Pass@N over --trials."""
    loaded = load_widesearch_tasks(tasks)
    for t in loaded:
        t.metadata["gold"] = str(gold_dir / f"{t.id}.csv")
    selected = select(loaded, language, ids, limit)
    missing = [t.id for t in selected if not Path(t.metadata["gold"]).is_file()]
    if missing:  # before any agent runs: a wrong --gold-dir would score every run 0
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise UserError(f"{gold_dir}: no gold table for {len(missing)} task(s): {shown}")
    evaluate(selected, tasks.stem, cfg, out, trials, concurrency, judge)


def load_qa_tasks(path: Path) -> list[Task]:
    """QA records, one JSON object per line: `question`, `golden_answers`, optional `id`."""
    tasks: list[Task] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read QA file ({e})") from e
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            answers = record["golden_answers"]
            answers = [answers] if isinstance(answers, str) else [str(a) for a in answers]
            tasks.append(
                Task(
                    id=str(record.get("id", f"q{n}")),
                    question=str(record["question"]),
                    kind="qa",
                    language=str(record.get("language", "en")),
                    golden_answers=answers,
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise UserError(
                f"{path}:{n}: not a QA record with question/golden_answers ({e})"
            ) from e
    return tasks


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
    selected = select(load_qa_tasks(data), None, ids, limit)
    evaluate(selected, data.stem, cfg, out, trials, concurrency)


@app.command("world")
@with_run_config
def world(
    cfg: Config,
    suite: Annotated[Literal["wide", "deep"], typer.Option(help="wide tables or deep QA")] = "wide",
    split: Annotated[Literal["train", "dev", "test"], typer.Option(help="task split")] = "dev",
    world_dir: Annotated[
        Path | None, typer.Option("--world", help="a built world dir (default: the bundled world)")
    ] = None,
    trials: TrialsOpt = 1,
    out: OutOpt = None,
    language: LanguageOpt = None,
    ids: IdsOpt = None,
    limit: LimitOpt = None,
    concurrency: ConcurrencyOpt = 4,
) -> None:
    """Run a task suite of the bundled offline world (searching its corpus), scored with the
    offline judge: item F1 / row F1 / success for wide tables, EM / F1 for deep QA."""
    from wideseek.world.store import load_world
    from wideseek.world.suites import deep_tasks, wide_tasks

    w = load_world(world_dir)
    if not (cfg.tools.corpus or cfg.tools.retrieval_url):  # the suite's own pages by default
        cfg.tools.corpus = str(w.corpus_path)
    loaded = list((wide_tasks if suite == "wide" else deep_tasks)(w, split))
    selected = select(loaded, language, ids, limit)
    evaluate(selected, f"world-{suite}-{split}", cfg, out, trials, concurrency)
