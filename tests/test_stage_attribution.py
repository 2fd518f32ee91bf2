"""Where wide answers lose item F1, stage by stage (runtime/stage_attribution), on the oracle's own
runs in the bundled world and on copies of them broken at one stage each."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from test_suite_runner import run_cli
from wideseek.eval.error_analysis import listed_names
from wideseek.runtime.oracle_run import run_oracle
from wideseek.runtime.stage_attribution import stage_figures, stage_lines
from wideseek.types import Trajectory, iter_trajectories
from wideseek.world import load_world
from wideseek.world.oracle.text import parse_entity_subtask


@pytest.fixture(scope="module")
def oracle_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("oracle")
    asyncio.run(run_oracle(load_world(), "wide", "dev", out, limit=4, show_progress=False))
    return out


@pytest.fixture(scope="module")
def oracle_runs(oracle_dir) -> list[Trajectory]:
    return list(iter_trajectories(oracle_dir / "trajectories.jsonl"))


def listed(runs: list[Trajectory]) -> list[Trajectory]:
    return [t for t in runs if listed_names(t)]


def test_the_oracles_runs_lose_nothing_at_any_stage(oracle_runs):
    figures = stage_figures(oracle_runs)
    assert figures.runs == 4 and len(listed(oracle_runs)) >= 2
    assert figures.reports_f1 == figures.answer_f1 == [1.0] * 4
    assert all(c[0] == c[1] > 0 for c in figures.lookup_cells)
    for run, recall in zip(oracle_runs, figures.list_recall, strict=True):
        assert recall == (1.0 if listed_names(run) else 0.0)  # a lead that named the rows: 0
    assert figures.list_names["gold"] > 0 and set(figures.list_names) == {"gold"}
    assert "right: 100% of" in stage_lines(oracle_runs)[0]
    families = [t.task.metadata["family"] for t in oracle_runs]
    assert figures.families == families and len(set(families)) >= 2
    by_family = stage_lines(oracle_runs)[2]
    assert by_family.startswith("By family (runs) the list's share of the gold keys / the ")
    assert all(f"{family} (" in by_family for family in families)
    assert by_family.count("100% / 1.000") == len(set(families))


def test_the_report_command_adds_the_stages_to_the_wide_error_analysis(oracle_dir):
    assert run_cli(["report", str(oracle_dir), "--no-plots"]) == 0
    assert "Stages over 4 wide multi-agent runs" in (oracle_dir / "report.md").read_text()


def test_a_short_list_and_a_wrong_value_show_at_their_own_stage(oracle_runs):
    run = listed(oracle_runs)[0].model_copy(deep=True)
    lister = next(a for a in run.subagents if a.prompt.startswith(("List", "列出")))
    names = listed_names(run) or []
    lister.answer = "\n".join(f"{i}. {n}" for i, n in enumerate([*names[:-1], "Atlantis"], 1))
    lookup = next(a for a in run.subagents if parse_entity_subtask(a.prompt))
    first, *rest = (lookup.answer or "").splitlines()
    ref, _, cells = first.partition(" — ")
    title, _, value = cells.split("; ")[0].partition(": ")
    broken = f"{ref} — {title}: 9{value}; " + "; ".join(cells.split("; ")[1:])  # 33.5 -> 933.5
    lookup.answer = "\n".join([broken.rstrip("; "), *rest])
    f = stage_figures([run])
    assert f.list_recall[0] == pytest.approx(1 - 1 / len(names))
    assert f.list_names == {"gold": len(names) - 1, "elsewhere": 1}  # on no page it read
    right, scored = f.lookup_cells[0]
    assert right == scored - 1
    assert f.reports_f1[0] < 1.0 and f.answer_f1 == [1.0]  # the answer itself was not touched


def test_names_copied_with_the_number_a_list_shows_still_count(oracle_runs):
    # a lister that copies "- 32: Germanium" or "- Germanium (32)" whole named Germanium, with
    # whatever whitespace it wrote after the colon
    run = listed(oracle_runs)[0].model_copy(deep=True)
    lister = next(a for a in run.subagents if a.prompt.startswith(("List", "列出")))
    names = listed_names(run) or []
    spaces = [" ", "\t", "\u00a0 "]
    lines = [
        f"{n} ({i})" if i % 2 else f"{i + 30}:{spaces[i % 3]}{n}" for i, n in enumerate(names, 1)
    ]
    lister.answer = "\n".join(f"{i}. {line}" for i, line in enumerate(lines, 1))
    f = stage_figures([run])
    assert f.list_recall == [1.0] and f.list_names == {"gold": len(names)}


def test_runs_it_cannot_measure_are_left_out(oracle_runs):
    run = oracle_runs[0].model_copy(deep=True)
    run.task.metadata["gold"] = "/nowhere/gold.csv"  # scored on another machine
    single = oracle_runs[1].model_copy(update={"mode": "single"})
    assert stage_figures([run, single]).runs == 0 and stage_lines([run, single]) == []
