"""Where a wide multi-agent answer loses its item F1, stage by stage.

A lead that plans as the oracle's demonstrations do first has one subagent list the rows
("List the 9 most populous cities of ..."), then gives the listed names to subagents that look
up their facts ("For each of these cities, find Population, Latitude: ..."), then copies their
reports into the table. Each stage can lose what the next cannot win back, so for every wide
multi-agent run with a readable gold table this module measures:

- `list_recall`: the share of the gold's keys among the listing subagent's names (names compared
  casefolded, a trailing "(qualifier)" dropped; no listing subagent: 0), and where its names
  came from (`list_names`): gold keys, other names found in the tool results it read (a wrong
  cut of a page it had), or names on no page it read (made up);
- `reports_f1`: the item F1 of the table the lookup subagents' reports make — one row per
  reported entity, its reported values in the gold's columns — scored like an answer: what a
  lead that copied its reports exactly would have scored;
- `lookup_accuracy`: of the reported values of the entities that are gold rows, the share the
  scorer counts right (pooled over runs): what looking up lost, apart from the list;
- `answer_f1`: the run's own item F1;
- and, for tasks that name their family (the world's), the list and the answer by family.

`reports_f1 - answer_f1` is what assembling the table lost; `1 - reports_f1` what listing and
looking up lost, of which the list bounds the recall. Reports are read in the demonstrations'
line format (`world.oracle.text.parse_entity_lines`), so a model that strays from it scores
low here for that reason too. It lives above `eval` because it reads the world's
demonstration formats (`world.oracle.text`); `wideseek report` and the model card add its lines
to the wide error analysis. Trajectories and a scorer in, figures out.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from statistics import mean

from wideseek.eval.error_analysis import listing_subagent, names_in_report
from wideseek.eval.table_extract import norm_column
from wideseek.eval.task_scoring import TaskScorer
from wideseek.eval.widesearch_data import WideSearchDataError
from wideseek.types import AgentRun, Trajectory
from wideseek.world.oracle.page_facts import keyed_item
from wideseek.world.oracle.text import parse_entity_lines, parse_entity_subtask

_QUALIFIER = re.compile(r"\s*[(（][^()（）]*[)）]\s*$")  # "Rabat (Morocco)" -> "Rabat"


@dataclass
class StageFigures:
    runs: int = 0  # wide multi-agent runs with a readable gold table
    list_recall: list[float] = field(default_factory=list)
    list_names: Counter[str] = field(default_factory=Counter)  # gold / on its pages / elsewhere
    reports_f1: list[float] = field(default_factory=list)
    lookup_cells: list[tuple[float, float]] = field(default_factory=list)  # (right, scored)
    answer_f1: list[float] = field(default_factory=list)
    families: list[str] = field(default_factory=list)  # each run's task family ("" if none)


def _name(text: str) -> str:
    text = " ".join(text.split())  # any run of whitespace as one space
    keyed = keyed_item(text)  # a keyed list's item copied whole: "32: Germanium"
    return _QUALIFIER.sub("", keyed[0] if keyed else text).casefold()


def _name_sources(lister: AgentRun | None, names: set[str], gold_keys: set[str]) -> Counter[str]:
    """How many of the listed `names` are gold keys, other names found in the listing
    subagent's tool results, or neither."""
    results = (r.text for t in lister.turns for r in t.tool_results) if lister else ()
    seen = " ".join(results).casefold()
    return Counter(
        "gold" if n in gold_keys else "on its pages" if n in seen else "elsewhere" for n in names
    )


def reports_table(trajectory: Trajectory, columns: list[str]) -> str:
    """The lookup subagents' reports as one markdown table with `columns` (normalised names,
    the key first); values under a title that is not a column are left out."""
    rows: dict[str, dict[str, str]] = {}
    for agent in trajectory.subagents:
        if parse_entity_subtask(agent.prompt) is None:
            continue
        for ref, cells in parse_entity_lines(agent.answer or "").items():
            row = rows.setdefault(_QUALIFIER.sub("", ref).strip(), {})
            row.update({norm_column(title): value for title, value in cells.items()})
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for key, cells in rows.items():
        values = [key, *(cells.get(c, "").replace("|", "/") for c in columns[1:])]
        lines.append("| " + " | ".join(values) + " |")
    return "```markdown\n" + "\n".join(lines) + "\n```"


async def _measure(trajectories: Iterable[Trajectory], scorer: TaskScorer) -> StageFigures:
    out = StageFigures()
    for traj in trajectories:
        evaluation = traj.task.evaluation or {}
        keys, required = evaluation.get("unique_columns"), evaluation.get("required")
        if traj.task.kind != "wide" or traj.mode != "multi" or not keys or not required:
            continue
        try:
            gold = scorer.gold_for(traj.task)
        except WideSearchDataError:
            continue  # the gold is not on this machine: nothing to measure against
        key = keys[0]
        columns = [key, *(c for c in required if c != key)]
        gold_keys = {_name(str(v)) for v in gold[key]} if key in gold else set()
        if not gold_keys:
            continue
        lister = listing_subagent(traj)
        listed = {_name(n) for n in names_in_report(lister)} if lister else set()
        out.list_names.update(_name_sources(lister, listed, gold_keys))
        reports = await scorer.score_text(traj.task, reports_table(traj, columns))
        out.runs += 1
        out.list_recall.append(len(listed & gold_keys) / len(gold_keys))
        out.reports_f1.append(float(reports.get("item_f1") or 0.0))
        # the scorer's [right, scored] attribute cells of the rows it joined to gold rows
        cells = (reports.get("metric_cells") or {}).values()
        out.lookup_cells.append((sum(c[0] for c in cells), sum(c[1] for c in cells)))
        out.answer_f1.append(float(traj.scores.get("item_f1") or 0.0))
        out.families.append(str(traj.task.metadata.get("family") or ""))
    return out


def stage_figures(
    trajectories: Iterable[Trajectory], scorer: TaskScorer | None = None
) -> StageFigures:
    """The module docstring's figures over `trajectories` (scored with the offline judge
    unless a scorer is given)."""
    measuring = _measure(list(trajectories), scorer or TaskScorer())
    # in a thread of its own: a run's report is written from inside its event loop
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, measuring).result()


def stage_lines(trajectories: Iterable[Trajectory], scorer: TaskScorer | None = None) -> list[str]:
    """Markdown for `stage_figures`; [] when no wide multi-agent run had a gold table here."""
    f = stage_figures(trajectories, scorer)
    if not f.runs:
        return []
    right, scored = (sum(c) for c in zip(*f.lookup_cells, strict=True))
    lookups = f"{right / scored:.0%} of {scored:.0f}" if scored else "none"
    sources = ", ".join(f"{f.list_names[k]} {k}" for k in ("gold", "on its pages", "elsewhere"))
    return [
        f"Stages over {f.runs} wide multi-agent runs (means): the list held "
        f"{mean(f.list_recall):.0%} of the gold keys (its names: {sources}); values looked "
        "up for gold rows right: "
        f"{lookups}; the lookup reports, copied as they are, would score item F1 "
        f"{mean(f.reports_f1):.3f}; the answers scored {mean(f.answer_f1):.3f}.",
        "",
        *_family_lines(f),
    ]


def _family_lines(f: StageFigures) -> list[str]:
    """The list and the answer by task family (the world's tasks name theirs): which kinds of
    list a model cuts wrong."""
    runs: dict[str, list[int]] = {}
    for i, family in enumerate(f.families):
        if family:
            runs.setdefault(family, []).append(i)
    if len(runs) < 2:
        return []
    parts = [
        f"{family} ({len(ix)}) {mean(f.list_recall[i] for i in ix):.0%} / "
        f"{mean(f.answer_f1[i] for i in ix):.3f}"
        for family, ix in sorted(runs.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]
    return ["By family (runs) the list's share of the gold keys / the answers' item F1: "
            + "; ".join(parts) + ".", ""]  # fmt: skip
