"""The WideSearch scoring pipeline: alignment, de-dup, join, counts, quirks (SCORER.md §3)."""

import json
import math
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from wideseek.cli import main
from wideseek.eval.judges import JudgeError, OfflineJudge
from wideseek.eval.task_scoring import TaskScorer
from wideseek.eval.widesearch_data import load_gold, load_widesearch_tasks
from wideseek.eval.widesearch_scorer import ScoreOptions, score_widesearch, stringify
from wideseek.types import Task

PIPELINE = {
    "university": {"preprocess": ["norm_str"], "metric": ["exact_match"]},
    "fee": {"preprocess": ["extract_number"], "metric": ["number_near"], "criterion": 0.05},
    "city": {"preprocess": ["norm_str"], "metric": ["llm_judge"], "criterion": "same city"},
}
TASK = Task(
    id="t1",
    question="q",
    evaluation={
        "unique_columns": ["university"],
        "required": ["university", "fee", "city"],
        "eval_pipeline": PIPELINE,
    },
)
GOLD = pd.DataFrame(
    {
        "University": ["Harvard University", "MIT", "Oxford", "ETH"],
        "Fee": [100, 200, 300, 400],
        "City": ["Cambridge, MA", "Cambridge, MA", "Oxford", "Zurich"],
    }
)


def answer(rows: Sequence[str], header: str = "| University | Fee | City |") -> str:
    return "\n".join(["```markdown", header, "|---|---|---|", *rows, "```"])


PERFECT = answer(
    [
        "| Harvard University | $100 | Cambridge, MA |",
        "| MIT | 200 | Cambridge, MA |",
        "| Oxford | 300 | Oxford |",
        "| ETH | 400 | Zurich |",
    ]
)


class SpyJudge(OfflineJudge):
    """The offline judge, recording every question it is asked."""

    def __init__(self) -> None:
        self.aligns: list[tuple[list[str], list[str]]] = []
        self.grades: list[tuple[str, list[str], list[str]]] = []

    async def align(self, candidates, reference):
        self.aligns.append((list(candidates), list(reference)))
        return await super().align(candidates, reference)

    async def grade(self, criterion, responses, targets):
        self.grades.append((criterion, list(responses), list(targets)))
        return await super().grade(criterion, responses, targets)


async def test_perfect_answer_succeeds_with_one_key_call_and_one_batch_per_judged_column():
    judge = SpyJudge()
    score = await score_widesearch(TASK, PERFECT, GOLD, judge)
    assert score.success
    assert (score.item_f1, score.row_f1) == (1.0, 1.0)
    # headers already match: no column alignment; one key alignment; one grade call for `city`
    assert len(judge.aligns) == 1 and judge.aligns[0][1] == GOLD["University"].tolist()
    assert len(judge.grades) == 1
    criterion, responses, targets = judge.grades[0]
    assert criterion == "same city" and len(responses) == 4
    assert "cambridge,ma" in targets  # the judge sees preprocessed values


async def test_partial_answer_counts_rows_and_items():
    text = answer(
        [
            "| Harvard University | 100 | Cambridge, MA |",
            "| MIT | 260 | Cambridge, MA |",  # fee off by 30%: one wrong cell
            "| Yale | 1 | New Haven |",  # not in gold: counts only in n_pred
        ]
    )
    score = await score_widesearch(TASK, text, GOLD, OfflineJudge())
    # joined: Harvard (3/3 cells), MIT (2/3); n_pred = 3, n_gold = 4, 3 columns
    assert score.row_precision == pytest.approx(1 / 3)
    assert score.row_recall == pytest.approx(1 / 4)
    assert score.item_precision == pytest.approx(5 / 9)
    assert score.item_recall == pytest.approx(5 / 12)
    assert not score.success


async def test_key_alignment_maps_spelling_variants_to_gold():
    text = PERFECT.replace("| Harvard University |", "| harvard   UNIVERSITY |")
    judge = SpyJudge()
    score = await score_widesearch(TASK, text, GOLD, judge)
    assert score.success


async def test_post_normalisation_duplicates_push_recall_above_one():
    text = answer(
        [
            "| Harvard University | 100 | Cambridge, MA |",
            "| harvard university | 100 | Cambridge, MA |",
            "| Harvard  University | 100 | Cambridge, MA |",
            "| MIT | 200 | Cambridge, MA |",
        ]
    )
    gold = GOLD.iloc[:2]
    head = await score_widesearch(TASK, text, gold, OfflineJudge())
    # raw strings differ, so all three Harvard rows survive de-dup and join the one gold row
    assert head.row_recall == pytest.approx(2.0)
    assert head.row_precision == 1.0
    assert not head.success
    fixed = await score_widesearch(
        TASK, text, gold, OfflineJudge(), ScoreOptions(dedup_after_normalise=True)
    )
    assert (fixed.row_recall, fixed.row_precision, fixed.success) == (1.0, 1.0, True)


async def test_raw_duplicate_keys_are_dropped_keep_first():
    text = PERFECT.replace(
        "| MIT | 200 | Cambridge, MA |", "| MIT | 200 | Cambridge, MA |\n| MIT | 999 | Boston |"
    )
    assert (await score_widesearch(TASK, text, GOLD, OfflineJudge())).success


async def test_nan_cells_match_nan_cells():
    gold = GOLD.copy()
    gold["Fee"] = [100, float("nan"), 300, 400]
    gold["City"] = ["Cambridge, MA", float("nan"), "Oxford", "Zurich"]
    text = PERFECT.replace("| MIT | 200 | Cambridge, MA |", "| MIT | N/A |  |")
    assert (await score_widesearch(TASK, text, gold, OfflineJudge())).success


INT_TASK = Task(
    id="t2",
    question="q",
    evaluation={
        "unique_columns": ["name"],
        "required": ["name", "age"],
        "eval_pipeline": {
            "name": {"preprocess": ["norm_str"], "metric": ["exact_match"]},
            "age": {"preprocess": ["norm_str"], "metric": ["exact_match"]},
        },
    },
)


async def test_float_printing_and_int_float_reconciliation():
    gold = pd.DataFrame({"name": ["a", "b"], "age": [19.0, 20.5]})  # float64 column
    assert stringify(gold["age"]).tolist() == ["19.0", "20.5"]
    text = "| name | age |\n|-|-|\n| a | 19 |\n| b | 20.5 |"  # pred column is float too
    assert (await score_widesearch(INT_TASK, text, gold, OfflineJudge())).success
    gold_whole = pd.DataFrame({"name": ["a", "b"], "age": [19.0, 20.0]})
    int_text = "| name | age |\n|-|-|\n| a | 19 |\n| b | 20 |"  # pred column is int64
    head = await score_widesearch(INT_TASK, int_text, gold_whole, OfflineJudge())
    assert head.item_f1 == pytest.approx(0.5)  # "19" != "19.0": HEAD's `is` never reconciles
    fixed = await score_widesearch(
        INT_TASK, int_text, gold_whole, OfflineJudge(), ScoreOptions(reconcile_int_float=True)
    )
    assert fixed.success


async def test_column_alignment_through_the_judge():
    nbsp = answer(PERFECT.splitlines()[3:7], header="| University | Fee | City\u00a0 Name |")
    task = Task(
        id="t3",
        question="q",
        evaluation={
            **TASK.evaluation,
            "required": ["university", "fee", "cityname"],
            "eval_pipeline": {
                "university": PIPELINE["university"],
                "fee": PIPELINE["fee"],
                "cityname": PIPELINE["city"],
            },
        },
    )
    gold = GOLD.rename(columns={"City": "City Name"})
    judge = SpyJudge()
    score = await score_widesearch(task, nbsp, gold, judge)
    assert judge.aligns[0] == (["university", "fee", "city\u00a0name"], task.evaluation["required"])
    assert score.success


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (answer(["| MIT | 1 | x |"], header="| **University** | Fee | City |"), "columns differ"),
        (answer(["| MIT | 1 | x | y |"], header="| University | Fee | City | Extra |"), "extra"),
        ("I could not find anything.", "no markdown table"),
        ("```markdown\n| a | b |\n|-|-|\n| 1 | 2 |\n| 1 | 2 | 3 | 4 |\n```", "does not parse"),
    ],
)
async def test_unusable_answers_score_zero_with_a_reason(text, reason):
    score = await score_widesearch(TASK, text, GOLD, OfflineJudge())
    assert score.item_f1 == 0.0 and not score.success
    assert reason in score.msg


async def test_none_response_and_empty_join():
    assert (await score_widesearch(TASK, None, GOLD, OfflineJudge())).msg == "response is None"
    text = answer(["| Yale | 1 | New Haven |"])
    score = await score_widesearch(TASK, text, GOLD, OfflineJudge())
    assert score.item_f1 == 0.0 and score.row_f1 == 0.0


async def test_judge_failure_is_a_zero_score_not_a_crash():
    class DownJudge(OfflineJudge):
        async def align(self, candidates, reference):
            raise JudgeError("judge http://x: HTTP 503 after 3 attempts")

    score = await score_widesearch(TASK, PERFECT, GOLD, DownJudge())
    assert score.item_f1 == 0.0 and score.msg.startswith("judge error")


async def test_date_near_uses_the_frozen_clock():
    task = Task(
        id="t4",
        question="q",
        evaluation={
            "unique_columns": ["name"],
            "required": ["name", "date"],
            "eval_pipeline": {
                "name": {"preprocess": ["norm_str"], "metric": ["exact_match"]},
                "date": {"preprocess": ["norm_date"], "metric": ["date_near"]},
            },
        },
    )
    gold = pd.DataFrame({"name": ["a", "b"], "date": ["2024", "March 3, 2021"]})
    text = "| name | date |\n|-|-|\n| a | 2024-08-10 |\n| b | 2021-03-20 |"
    frozen = await score_widesearch(task, text, gold, OfflineJudge())
    assert frozen.success  # "2024" -> 2024-08-01 under the frozen August "now"
    january = ScoreOptions(now=datetime(2026, 1, 5))
    assert not (await score_widesearch(task, text, gold, OfflineJudge(), january)).success


def _with_pipeline(pipeline: dict) -> Task:
    return Task(
        id="t5", question="q", evaluation={**INT_TASK.evaluation, "eval_pipeline": pipeline}
    )


AGE_GOLD = pd.DataFrame({"name": ["a", "b"], "age": ["19", "20"]})
AGE_TEXT = "| name | age |\n|-|-|\n| a | 19 |\n| b | 21 |"


async def test_each_metric_of_a_column_is_its_own_score_as_upstream():
    name = {"preprocess": ["norm_str"], "metric": ["exact_match"]}
    two = {"preprocess": ["norm_str"], "metric": ["exact_match", "in_match"]}
    score = await score_widesearch(
        _with_pipeline({"name": name, "age": two}), AGE_TEXT, AGE_GOLD, OfflineJudge()
    )
    # rows: a = key 1 + 1 + 1, b = key 1 + 0 + 0; items = 2 rows x 2 required columns
    assert score.item_precision == pytest.approx(4 / 4)
    assert score.row_precision == pytest.approx(1 / 2)
    assert score.metric_cells == {"exact_match": [1.0, 2.0], "in_match": [1.0, 2.0]}
    none = {"preprocess": ["norm_str"], "metric": []}
    score = await score_widesearch(
        _with_pipeline({"name": name, "age": none}), AGE_TEXT, AGE_GOLD, OfflineJudge()
    )
    # a column without a metric adds no score: only the key cells count, rows are right
    assert (score.item_precision, score.row_precision, score.success) == (0.5, 1.0, False)


@pytest.mark.parametrize(
    ("pipeline", "reason"),
    [
        (
            {
                "name": {"preprocess": ["norm_str"], "metric": ["exact_match"]},
                "age": {"preprocess": ["norm_str"], "metric": ["exact_match"]},
                "other": {"preprocess": ["norm_str"], "metric": ["exact_match"]},
            },
            "eval_pipeline names columns not in required: ['other']",
        ),
        (
            {"name": {"preprocess": ["norm_str"], "metric": ["exact_match"]}},
            "required columns without an eval_pipeline entry: ['age']",
        ),
    ],
)
async def test_pipeline_that_does_not_fit_required_scores_zero(pipeline, reason):
    text = "| name | age |\n|-|-|\n| a | 19 |\n| b | 20 |"
    score = await score_widesearch(_with_pipeline(pipeline), text, AGE_GOLD, OfflineJudge())
    assert score.item_f1 == 0.0 and reason in score.msg


async def test_unparsable_url_scores_zero_as_upstream():
    task = _with_pipeline(
        {
            "name": {"preprocess": ["norm_str"], "metric": ["exact_match"]},
            "age": {"preprocess": ["norm_str"], "metric": ["url_match"]},
        }
    )
    gold = pd.DataFrame({"name": ["a"], "age": ["https://a.org"]})
    text = "| name | age |\n|-|-|\n| a | https://[a.org |"
    score = await score_widesearch(task, text, gold, OfflineJudge())
    assert score.item_f1 == 0.0 and score.msg.startswith("evaluator error: ValueError")


async def test_a_null_grade_is_skipped_like_pandas_does_upstream():
    class NoVerdictOnSecondRow(OfflineJudge):
        async def grade(self, criterion, responses, targets):
            return [math.nan if i == 1 else 1.0 for i in range(len(responses))]

    score = await score_widesearch(TASK, PERFECT, GOLD, NoVerdictOnSecondRow())
    # the second row's city has no verdict: the row still counts (pandas' min skips NaN)
    # and the item sum lacks that one cell
    assert score.row_precision == 1.0
    assert score.item_precision == pytest.approx(11 / 12)
    assert score.metric_cells["llm_judge"] == [3.0, 4.0]
    assert not score.success


# --- bare carriage returns (SCORER.md §1.5): official failure by default, lenient on request ---

FIGURES = (
    "item_precision", "item_recall", "item_f1", "row_precision", "row_recall", "row_f1", "success"
)  # fmt: skip
# A gold cell's `\r\n` pasted into one markdown row keeps its `\r`: "Cambridge,\r MA".
CR_ANSWER = PERFECT.replace("| MIT | 200 | Cambridge, MA |", "| MIT | 200 | Cambridge,\r MA |")


def _all_zero(score) -> bool:
    return not any(getattr(score, name) for name in FIGURES)


async def test_bare_carriage_return_scores_zero_unless_lenient():
    official = await score_widesearch(TASK, CR_ANSWER, GOLD, OfflineJudge())
    assert _all_zero(official) and "Buffer overflow caught" in official.msg
    lenient = await score_widesearch(
        TASK, CR_ANSWER, GOLD, OfflineJudge(), ScoreOptions(lenient_tables=True)
    )
    assert lenient.success and lenient.item_f1 == 1.0


async def test_task_scorer_takes_the_lenient_option(tmp_path):
    GOLD.to_csv(tmp_path / "t1.csv", index=False)
    task = TASK.model_copy(update={"metadata": {"gold": str(tmp_path / "t1.csv")}})
    official = await TaskScorer().score_text(task, CR_ANSWER)
    assert not any(official[name] for name in FIGURES)
    assert (await TaskScorer(lenient_tables=True).score_text(task, CR_ANSWER))["success"]


def test_score_command_takes_lenient_tables(tmp_path):
    GOLD.to_csv(tmp_path / "t1.csv", index=False)
    record = {"instance_id": "t1", "query": "q", "language": "en"}
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({**record, "evaluation": json.dumps(TASK.evaluation)}) + "\n")
    responses = tmp_path / "responses.jsonl"
    responses.write_text(json.dumps({"instance_id": "t1", "response": CR_ANSWER}) + "\n")
    base = ["score", "--tasks", str(tasks), "--gold-dir", str(tmp_path)]
    base += ["--responses", str(responses), "--out", str(tmp_path / "scores.jsonl")]
    for flags, success in (([], False), (["--lenient-tables"], True)):
        with pytest.raises(SystemExit) as done:
            main([*base, *flags])
        assert done.value.code == 0
        row = json.loads((tmp_path / "scores.jsonl").read_text())
        assert row["success"] is success and (row["item_f1"] == 1.0) is success
        assert ("Buffer overflow caught" in row["msg"]) is not success


DATA = Path(
    os.environ.get(
        "WIDESEEK_WIDESEARCH_DIR",
        Path(__file__).resolve().parents[1].parent / "shared" / "widesearch",
    )
)


def _pasted_back(gold: pd.DataFrame) -> str:
    r"""The gold table as a markdown answer whose multi-line cells keep their `\r`: each `\n`
    becomes a space, as when a `\r\n` cell is pasted into one row."""

    def cell(value: object) -> str:
        return "" if pd.isna(value) else str(value).replace("\n", " ")

    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in gold.itertuples(index=False)]
    header = "| " + " | ".join(map(str, gold.columns)) + " |"
    return "\n".join(["```markdown", header, "|" + "---|" * gold.shape[1], *rows, "```"])


@pytest.mark.skipif(
    not (DATA / "widesearch.jsonl").exists(), reason=f"WideSearch data not found at {DATA}"
)
@pytest.mark.parametrize("instance_id", ["ws_en_001", "ws_zh_100"])  # the gold with `\r\n` cells
async def test_real_gold_pasted_back_with_carriage_returns(instance_id):
    task = next(t for t in load_widesearch_tasks(DATA / "widesearch.jsonl") if t.id == instance_id)
    gold = load_gold(DATA / "widesearch_gold", instance_id, task.evaluation["required"])
    answer = _pasted_back(gold)
    assert "\r " in answer
    official = await score_widesearch(task, answer, gold, OfflineJudge())
    assert _all_zero(official) and "Buffer overflow caught" in official.msg
    lenient = await score_widesearch(
        task, answer, gold, OfflineJudge(), ScoreOptions(lenient_tables=True)
    )
    assert lenient.item_f1 == 1.0 and lenient.success  # measured; 0.61 when `\r` split rows
