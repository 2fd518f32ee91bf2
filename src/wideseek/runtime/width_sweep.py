"""The width sweep: the same world tasks at several widths, each beside a single agent at an
equal token budget, written up as one table and one plot.

Contract. `run_width_sweep(world, suite, tasks, out, widths, ...) -> list[SweepRow]`:
1) for each width w (ascending) runs the tasks multi-agent with at most w subagents per lead
   call (`agent.max_subagents`) through the one world entry (`run_world`) into `out/multi-w<w>`;
2) takes its token budget: the tokens the multi-agent system held per task, i.e. the mean over
   its trajectories of the sum over its agents of each agent's largest context (the prompt
   plus the response of its longest turn), rounded up. Parallel agents each hold their own
   context; the budget gives one agent all of that room at once;
3) runs the same tasks with a single agent whose context length is that budget (lowered to
   what the engine holds, as every limit is) into `out/single-w<w>`, unless `single` is off;
   every other limit is the same as the multi-agent run's;
4) writes `sweep.json` and `sweep.md` (one row per width: the suite's figures, tokens and
   subagents per task, the budget and the single agent's figures) and `sweep.png` (the
   headline figure against width, multi-agent and single agent) into `out`.

Every run is resumable (what its folder holds is skipped), so a stopped sweep is finished by
the same command. A single-agent folder records its budget; if the multi-agent run it was
matched to has changed since (more tasks, other limits), it is refused rather than mixed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from wideseek.config import Config
from wideseek.errors import UsageError
from wideseek.eval.runner import RUN_INFO, read_run_info
from wideseek.io import atomic_write_text
from wideseek.runtime.world_run import EvalLimits, WorldRun, run_world
from wideseek.types import Task, Trajectory, headline_metric
from wideseek.world.store import World
from wideseek.world.suites import SUITE_METRICS

SWEEP_JSON, SWEEP_MD, SWEEP_PNG = "sweep.json", "sweep.md", "sweep.png"
# the cost figures of a run's summary shown beside its scores
COSTS = ("tokens_per_run", "subagents_per_run", "seconds_per_run", "errors")


def parse_widths(text: str) -> list[int]:
    """'1,2,4,8' -> [1, 2, 4, 8] (sorted, no repeats); anything else is a UsageError."""
    try:
        widths = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        widths = []
    if not widths or widths[0] < 1:
        raise UsageError(f"--subagents: expected widths like 1,2,4,8, not {text!r}")
    return widths


def held_tokens(trajectory: Trajectory) -> int:
    """Tokens the agents of one trajectory held: the sum of each agent's largest context."""
    return sum(
        max((t.usage.prompt_tokens + t.usage.completion_tokens for t in agent.turns), default=0)
        for agent in trajectory.agents
    )


def token_budget(trajectories: Sequence[Trajectory]) -> int:
    """The single agent's context for an equal budget (module docstring, step 2)."""
    if not trajectories:
        return 0
    return math.ceil(sum(map(held_tokens, trajectories)) / len(trajectories))


@dataclass
class SweepRow:
    """One width: the multi-agent run's figures and the single agent's at its budget."""

    width: int
    multi: dict[str, float]
    budget: int
    single: dict[str, float] | None = None
    single_context: int | None = None  # the budget, or less where the engine holds less


def _figures(run: WorldRun, suite: str) -> dict[str, float]:
    summary = run.runs[suite].summary
    figures = {key: summary.get(f"{key}_avg", 0.0) for key in SUITE_METRICS[suite]}
    return {**figures, **{key: summary.get(key, 0.0) for key in COSTS}}


def _check_budget(run_dir: Path, budget: int) -> None:
    """Refuse a single-agent folder made for another budget (module docstring)."""
    info_path = run_dir / RUN_INFO
    if not info_path.exists():
        return
    made = read_run_info(run_dir).extra
    if made.get("token_budget") not in (None, budget):
        raise UsageError(
            f"{run_dir} holds a single-agent run at a budget of {made['token_budget']} tokens; "
            f"the multi-agent run beside it now needs {budget}: delete the folder to redo it"
        )


async def run_width_sweep(
    world: World,
    suite: str,
    tasks: Sequence[Task],
    out: str | Path,
    widths: Sequence[int],
    *,
    split: str,
    config: Config,
    limits: EvalLimits,
    oracle: bool = False,
    single: bool = True,
    reworded: bool = False,
    trials: int = 1,
    concurrency: int = 4,
    show_progress: bool = True,
) -> list[SweepRow]:
    """Run the sweep and write its report (see the module docstring); its rows."""
    out = Path(out)
    common: dict[str, Any] = dict(
        split=split, config=config, oracle=oracle, reworded=reworded, trials=trials,
        concurrency=concurrency, show_progress=show_progress,
    )  # fmt: skip
    rows = []
    for width in sorted(widths):
        agent = config.agent.model_copy(update={"mode": "multi", "max_subagents": width})
        multi = await run_world(
            world, {suite: tasks}, out / f"multi-w{width}", agent=agent, limits=limits,
            extra={"width": width}, **common,
        )  # fmt: skip
        row = SweepRow(width, _figures(multi, suite), token_budget(multi.trajectories()))
        if single and row.budget:
            where = out / f"single-w{width}"
            _check_budget(where, row.budget)
            alone = config.agent.model_copy(update={"mode": "single"})
            given = limits.model_copy(update={"context_length": max(row.budget, 256)})
            run = await run_world(
                world, {suite: tasks}, where, agent=alone, limits=given,
                extra={"width": width, "token_budget": row.budget}, **common,
            )  # fmt: skip
            row.single, row.single_context = _figures(run, suite), run.limits["context_length"]
        rows.append(row)
    write_sweep_report(out, suite, headline_metric(tasks[0].kind), rows)
    return rows


def sweep_table(suite: str, rows: Sequence[SweepRow]) -> list[str]:
    """The markdown table of a sweep: one line per width."""
    metrics = SUITE_METRICS[suite]
    head = ["width", *(f"multi {m}" for m in metrics), "multi tokens/task", "subagents/task",
            "budget", "single context", *(f"single {m}" for m in metrics),
            "single tokens/task"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for r in rows:
        s = r.single or {}
        cells = [str(r.width), *(f"{r.multi[m]:.4f}" for m in metrics),
                 f"{r.multi['tokens_per_run']:.0f}", f"{r.multi['subagents_per_run']:.2f}",
                 str(r.budget), str(r.single_context or "-"),
                 *(f"{s[m]:.4f}" if s else "-" for m in metrics),
                 f"{s['tokens_per_run']:.0f}" if s else "-"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def write_sweep_report(
    out: Path, suite: str, headline: str, rows: Sequence[SweepRow]
) -> list[Path]:
    """sweep.json, sweep.md and (with matplotlib) sweep.png in `out`; the files written."""
    atomic_write_text(
        out / SWEEP_JSON,
        json.dumps({"suite": suite, "headline": headline, "rows": [asdict(r) for r in rows]},
                   indent=2),
    )  # fmt: skip
    lines = [
        f"# Width sweep: {out}",
        "",
        f"Suite {suite}, headline {headline}. Multi-agent runs at each width (most subagents "
        "per lead call) and a single agent beside each at an equal token budget: a context as "
        "large as the tokens the multi-agent run's agents held per task (the sum over its "
        "agents of each one's largest context, mean over tasks); `single context` is the "
        "budget as run, lowered where the engine holds less. Tokens per task count every "
        "prompt and response token of the run.",
        "",
        *sweep_table(suite, rows),
        "",
    ]
    written = [out / SWEEP_JSON, out / SWEEP_MD]
    plot = _plot(out / SWEEP_PNG, headline, rows)
    lines.append(f"![{headline} vs width]({SWEEP_PNG})" if plot else plot_skipped())
    atomic_write_text(out / SWEEP_MD, "\n".join(lines) + "\n")
    return [*written, *([out / SWEEP_PNG] if plot else [])]


def plot_skipped() -> str:
    return "(plot skipped: matplotlib is not installed; pip install 'wideseek[report]')"


def _plot(path: Path, headline: str, rows: Sequence[SweepRow]) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    widths = [r.width for r in rows]
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.plot(widths, [r.multi[headline] for r in rows], marker="o", label="multi-agent")
    paired = [r for r in rows if r.single]
    if paired:
        ax.plot([r.width for r in paired], [r.single[headline] for r in paired], marker="s",
                linestyle="--", label="single agent, equal token budget")  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xticks(widths, [str(w) for w in widths])
    ax.set_xlabel("subagents per lead call")
    ax.set_ylabel(f"{headline} (Avg@N)")
    ax.set_ylim(0, 1.1)  # room above a perfect score for the legend
    ax.legend(fontsize="small", loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
