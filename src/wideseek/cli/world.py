"""`wideseek world build|pack|stats|oracle`: thin commands over wideseek.world and the runtime's
world entry (`oracle` runs `runtime.oracle_run.run_oracle`, i.e. `runtime.run_world`)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from wideseek.cli.common import command_group
from wideseek.cli.options import DEFAULT_PROFILE, Mode, Profile
from wideseek.progress import run_progress
from wideseek.runtime.oracle_run import OracleSummary, run_oracle
from wideseek.world import build_world, load_world, pack_world
from wideseek.world.build import BUILD_STAGES
from wideseek.world.people_wordings import Wordings
from wideseek.world.stats import ROW_BUCKETS, all_wide_stats, deep_stats
from wideseek.world.suites import Split, Suite
from wideseek.world.wide_tasks import SPLITS

world_app = command_group(
    help="Build, pack and inspect the offline world (corpus + task suites).",
)
console = Console()


@world_app.command()
def build(
    out: Annotated[Path, typer.Option(help="Directory to write the world into.")] = Path("world"),
    seed: Annotated[int, typer.Option(help="Seed for page wording, splits and sampling.")] = 0,
    ship: Annotated[bool, typer.Option(help="Also pack it as the shipped default world.")] = False,
) -> None:
    """Build corpus, wide/deep tasks and gold tables from the pinned fact packages."""
    start = time.perf_counter()
    with run_progress() as progress:
        bar = progress.add_task("building world", total=BUILD_STAGES)

        def step(stage: str, n: int) -> None:
            progress.update(bar, completed=n - 1, description=stage)

        manifest = build_world(out, seed=seed, progress=step)
        progress.update(bar, completed=BUILD_STAGES, description="done")
    if ship:
        console.print(f"packed into {pack_world(out)}")
    c = manifest.counts
    console.print(
        f"world {manifest.world_hash[:16]} in {out}: {c['entities_total']} entities, "
        f"{c['facts']} facts, {c['pages']} pages, wide {c['wide']}, deep {c['deep']} "
        f"({time.perf_counter() - start:.1f}s)"
    )


@world_app.command()
def stats(
    directory: Annotated[
        Path | None, typer.Argument(help="World directory (default: the shipped world).")
    ] = None,
) -> None:
    """Print entity/page/task counts and row, column and metric distributions per suite."""
    world = load_world(directory)
    m = world.manifest
    console.print(f"world {m.world_hash[:16]} at {world.root} (seed {m.seed})")
    console.print(f"sources: {', '.join(f'{k}=={v}' for k, v in m.sources.items())}")
    entities = ", ".join(f"{k} {v}" for k, v in m.counts["entities"].items())
    console.print(
        f"entities {m.counts['entities_total']} ({entities}); "
        f"facts {m.counts['facts']}; pages {m.counts['pages']}"
    )
    wide = all_wide_stats(world)
    table = Table(title="wide suites")
    table.add_column("")
    for split in SPLITS:
        table.add_column(split, justify="right")
    table.add_row("tasks", *(str(wide[s].tasks) for s in SPLITS))
    for lang in ("en", "zh"):
        table.add_row(f"language {lang}", *(str(wide[s].languages[lang]) for s in SPLITS))
    for lo, hi in ROW_BUCKETS:
        table.add_row(f"rows {lo}-{hi}", *(str(wide[s].rows[f"{lo}-{hi}"]) for s in SPLITS))
    for n in sorted({n for s in SPLITS for n in wide[s].columns}):
        table.add_row(f"{n} columns", *(str(wide[s].columns[n]) for s in SPLITS))
    for metric in sorted({k for s in SPLITS for k in wide[s].metrics}):
        table.add_row(f"metric {metric}", *(str(wide[s].metrics[metric]) for s in SPLITS))
    console.print(table)
    deep = {s: deep_stats(world, s) for s in SPLITS}
    table = Table(title="deep suites")
    table.add_column("")
    for split in SPLITS:
        table.add_column(split, justify="right")
    for key in sorted({k for s in SPLITS for k in deep[s]}):
        table.add_row(f"{key[0]} {key[1]}-hop", *(str(deep[s][key]) for s in SPLITS))
    console.print(table)


@world_app.command()
def oracle(
    suite: Annotated[Suite, typer.Option(help="Wide (tables) or deep (QA) tasks.")] = "wide",
    split: Annotated[Split, typer.Option(help="Which split of the suite.")] = "dev",
    mode: Annotated[Mode, typer.Option(help="Lead + subagents, or one agent.")] = "multi",
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N tasks.")] = None,
    profile: Annotated[
        Profile, typer.Option(help="Tool names and call shapes the agents use.")
    ] = DEFAULT_PROFILE,
    out: Annotated[
        Path | None,
        typer.Option(help="Run directory (default runs/oracle-SUITE-SPLIT-MODE[-WORDINGS])."),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Tasks run at once.")] = 4,
    world: Annotated[
        Path | None, typer.Option(help="World directory (default: the shipped world).")
    ] = None,
    wordings: Annotated[
        Wordings,
        typer.Option(
            help="How the questions are asked: the world's templates; 'people': in people's "
            "words (half with the columns stated as `ask` states them); 'mixed': a third each."
        ),
    ] = "template",
) -> None:
    """Play the oracle policy through the runtime: SFT's demonstrations + its scores and the
    sizes of its agents' contexts (resumable). It plays under the agent's own limits (the
    paper's), which its prompts carry; the oracle as a figure beside a model, under the
    evaluation limits, is `wideseek eval world --oracle`."""
    suffix = "" if profile == "wideseek" else f"-{profile}"
    suffix += "" if wordings == "template" else f"-{wordings}"
    out = out or Path("runs") / f"oracle-{suite}-{split}-{mode}{suffix}"
    loaded = load_world(world)
    played = run_oracle(
        loaded, suite, split, out, mode, limit, str(profile), concurrency, wordings=wordings
    )
    summary = asyncio.run(played)
    _print_summary(summary, out)


def _print_summary(summary: OracleSummary, out: Path) -> None:
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in summary.metrics.items())
    console.print(
        f"{summary.tasks} tasks: {metrics}; {summary.mean_task_s:.2f} s per task "
        f"({summary.wall_s:.0f} s wall); {summary.errors} run errors"
    )
    table = Table(title="agent contexts (characters; tokens approximate)")
    for column in ("role", "agents", "mean", "p50", "p90", "max", "p90 tok", "max tok"):
        table.add_column(column, justify="left" if column == "role" else "right")
    for role, c in summary.contexts.items():
        table.add_row(
            role,
            str(c.agents),
            f"{c.mean_chars:.0f}",
            *(str(v) for v in (c.p50_chars, c.p90_chars, c.max_chars, c.p90_tokens, c.max_tokens)),
        )
    console.print(table)
    console.print(f"trajectories and results in {out}")
