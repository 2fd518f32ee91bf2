"""The wide error analysis: answer vs gold rows from the scorer, F1 by gold size, unread."""

from __future__ import annotations

import pytest

from wideseek.eval.error_analysis import (
    error_analysis_lines,
    lister_analysis,
    lister_lines,
    wide_error_analysis,
)
from wideseek.eval.runner import ResultRow
from wideseek.eval.table_extract import render_markdown_table
from wideseek.eval.task_scoring import TaskScorer
from wideseek.types import AgentRun, Task, Trajectory
from wideseek.world import load_world
from wideseek.world.suites import suite_tasks


def row(task: str, **scores) -> ResultRow:
    return ResultRow(instance_id=task, trial=0, scores=scores)


def test_rows_by_gold_size_and_answer_sizes():
    rows = [
        row("a", item_f1=0.5, answer_rows=3, gold_rows=4),
        row("b", item_f1=0.2, answer_rows=3, gold_rows=25),
        row("c", item_f1=1.0, answer_rows=8, gold_rows=8),
        row("d", item_f1=0.9, answer_rows=9, gold_rows=8),
        row("e", item_f1=0.0, msg="columns differ: ['x'] vs ['y']"),
        row("f", item_f1=0.0, msg="no markdown table in the response"),
        row("g", item_f1=0.0, msg="columns differ: ['z'] vs ['y']"),
        row("q", em=1.0),  # a deep answer: not part of it
    ]
    e = wide_error_analysis(rows)
    assert (e.answers, e.read, e.shorter, e.same, e.longer) == (7, 4, 2, 1, 1)
    assert [(b.label, b.answers) for b in e.by_gold_rows] == [("1-5", 1), ("6-10", 2), ("21+", 1)]
    six_to_ten = e.by_gold_rows[1]
    assert six_to_ten.item_f1 == pytest.approx(0.95) and six_to_ten.answer_rows == 8.5
    assert e.sizes.most_common(1) == [(3, 2)]
    assert e.unread == {"columns differ": 2, "no markdown table in the response": 1}
    text = "\n".join(error_analysis_lines(rows))
    assert "| 21+ | 1 | 0.200 | 3.0 | 25.0 |" in text and "columns differ ×2" in text
    assert error_analysis_lines([row("q", em=1.0)]) == []


def test_an_unread_answer_counts_in_its_bin_with_its_zero():
    # the scorer gives the gold's rows of an answer it could not read: a bin's F1 is then the
    # mean over every answer of that size, as the headline item F1 is
    rows = [
        row("a", item_f1=0.8, answer_rows=8, gold_rows=8),
        row("b", item_f1=0.0, gold_rows=9, msg="no markdown table in the response"),
        row("c", item_f1=0.0, gold_rows=25, msg="columns differ: ['x'] vs ['y']"),
        row("d", item_f1=0.0, msg="response is None"),  # rows unknown: outside every bin
    ]
    e = wide_error_analysis(rows)
    assert (e.answers, e.read) == (4, 1)
    assert [(b.label, b.answers, b.item_f1, b.answer_rows) for b in e.by_gold_rows] == [
        ("6-10", 2, pytest.approx(0.4), 8.0),
        ("21+", 1, 0.0, None),
    ]
    assert "| 21+ | 1 | 0.000 | - | 25.0 |" in "\n".join(error_analysis_lines(rows))


async def test_the_scorer_records_answer_and_gold_rows():
    scorer = TaskScorer()
    task = next(t for t in suite_tasks(load_world(), "wide", "test") if t.metadata["n_rows"] > 4)
    gold = scorer.gold_for(task)
    answer = render_markdown_table(gold.head(3))  # fenced
    scores = await scorer.score_text(task, answer)
    assert (scores["answer_rows"], scores["gold_rows"]) == (3, task.metadata["n_rows"])
    unread = await scorer.score_text(task, "no table here")
    assert unread.get("answer_rows") is None and unread["item_f1"] == 0.0
    assert unread["gold_rows"] == task.metadata["n_rows"]  # the size it missed
    wrong_columns = render_markdown_table(gold.head(3).rename(columns=lambda c: f"{c} x"))
    assert (await scorer.score_text(task, wrong_columns))["gold_rows"] == task.metadata["n_rows"]


def run_with_lister(task_id: str, report: str | None, gold: int | None, read: int | None = None,
                    mode: str = "multi", kind: str = "wide") -> Trajectory:  # fmt: skip
    """A multi-agent run: a lead, then a subagent asked for the rows with `report` (None: no
    listing subtask), then one asked for their facts."""
    task = Task(
        id=task_id, question="q", kind=kind, metadata={} if gold is None else {"n_rows": gold}
    )
    agents = [AgentRun(agent_id=0, role="lead", prompt="q")]
    if report is not None:
        prompt = (
            "List the 9 most populous cities of Nigeria. Give the names numbered, one per line."
        )
        agents.append(AgentRun(agent_id=1, role="subagent", prompt=prompt, answer=report))
    facts = "For each of these cities, find Latitude: Lagos (Nigeria)."
    agents.append(AgentRun(agent_id=2, role="subagent", prompt=facts, answer="1. Lagos\n2. x"))
    scores = {} if read is None else {"gold_rows": read}
    return Trajectory(task=task, mode=mode, agents=agents, scores=scores)


def test_listers_names_against_the_gold_rows():
    runs = [
        run_with_lister("a", "1. Lagos\n2. Kano\n3. Ibadan", gold=9),  # stopped at 3
        run_with_lister("b", "<think>\nThe first 2.\n</think>\n\n1. Lagos\n2. Kano", gold=2),
        run_with_lister("c", "- Lagos\n- Kano\n- Ibadan\n3 names.", gold=2),  # bulleted, long
        run_with_lister("d", "I could not find the list.", gold=4),
        run_with_lister("e", "1. Lagos", gold=None, read=3),  # the scorer's count of gold rows
        run_with_lister("f", None, gold=5),  # the lead named the rows itself: no list
        run_with_lister("g", "1. Lagos", gold=None),  # the gold's size unknown: not counted
        run_with_lister("h", "1. Lagos", gold=3, mode="single"),  # not multi-agent
        run_with_lister("i", "1. Lagos", gold=1, kind="qa"),  # not wide
    ]
    c = lister_analysis(runs)
    assert (c.tasks, c.listed, c.shorter, c.same, c.longer) == (7, 5, 3, 1, 1)
    assert c.sizes == {3: 2, 2: 1, 0: 1, 1: 1}
    text = "".join(lister_lines(runs))
    assert "5 of 7 wide runs" in text and "fewer 3, as many 1, more 1" in text
    assert "most frequent sizes: 3 names ×2" in text
    assert lister_lines(runs[5:]) == []
