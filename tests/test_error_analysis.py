"""The wide error analysis: answer vs gold rows from the scorer, F1 by gold size, unread."""

from __future__ import annotations

import pytest

from wideseek.eval.error_analysis import error_analysis_lines, wide_error_analysis
from wideseek.eval.runner import ResultRow
from wideseek.eval.table_extract import render_markdown_table
from wideseek.eval.task_scoring import TaskScorer
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
    assert e.answer_sizes.most_common(1) == [(3, 2)]
    assert e.unread == {"columns differ": 2, "no markdown table in the response": 1}
    text = "\n".join(error_analysis_lines(rows))
    assert "| 21+ | 1 | 0.200 | 3.0 | 25.0 |" in text and "columns differ ×2" in text
    assert error_analysis_lines([row("q", em=1.0)]) == []


async def test_the_scorer_records_answer_and_gold_rows():
    scorer = TaskScorer()
    task = next(t for t in suite_tasks(load_world(), "wide", "test") if t.metadata["n_rows"] > 4)
    gold = scorer.gold_for(task)
    answer = render_markdown_table(gold.head(3))  # fenced
    scores = await scorer.score_text(task, answer)
    assert (scores["answer_rows"], scores["gold_rows"]) == (3, task.metadata["n_rows"])
    unread = await scorer.score_text(task, "no table here")
    assert unread.get("answer_rows") is None and unread["item_f1"] == 0.0
