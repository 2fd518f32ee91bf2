"""Loading WideSearch task records and gold tables, and their error messages."""

import json

import pytest

from wideseek.eval.widesearch_data import (
    WideSearchDataError,
    load_gold,
    load_widesearch_tasks,
)

EVALUATION = {
    "unique_columns": ["name"],
    "required": ["name", "totalpopulation(million)"],
    "eval_pipeline": {
        "name": {"preprocess": ["norm_str"], "metric": ["exact_match"]},
        "totalpopulation(million)": {"preprocess": ["extract_number"], "metric": ["number_near"]},
    },
}


def record(**overrides):
    base = {"instance_id": "ws_en_900", "query": "q", "language": "en"}
    return json.dumps({**base, "evaluation": json.dumps(EVALUATION), **overrides})


def test_task_records_become_wide_tasks(tmp_path):
    path = tmp_path / "tasks.jsonl"
    path.write_text(record() + "\n\n" + record(instance_id="ws_zh_900", language="zh") + "\n")
    tasks = load_widesearch_tasks(path)
    assert [(t.id, t.kind, t.language) for t in tasks] == [
        ("ws_en_900", "wide", "en"),
        ("ws_zh_900", "wide", "zh"),
    ]
    assert tasks[0].evaluation == EVALUATION


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "tasks.jsonl:1: not a WideSearch record"),
        (record(evaluation="{oops"), "tasks.jsonl:1: `evaluation` is not valid JSON"),
        (record(evaluation=json.dumps({"required": []})), "evaluation.unique_columns"),
    ],
)
def test_bad_task_lines_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "tasks.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(WideSearchDataError, match=message.replace("(", r"\(")):
        load_widesearch_tasks(path)


def test_gold_headers_are_normalised_and_required_columns_kept(tmp_path):
    (tmp_path / "ws_en_900.csv").write_text(
        "\ufeffName,Total Population(Million),Extra\r\nFrance,68,x\r\nSpain,,y\r\n",
        encoding="utf-8",
    )
    gold = load_gold(tmp_path, "ws_en_900", EVALUATION["required"])
    assert list(gold.columns) == EVALUATION["required"]
    assert gold["totalpopulation(million)"].dtype.kind == "f"  # NaN makes it float64
    with pytest.raises(WideSearchDataError, match="lacks required columns"):
        load_gold(tmp_path, "ws_en_900", ["name", "capital"])
    with pytest.raises(WideSearchDataError, match="gold table not found"):
        load_gold(tmp_path, "ws_en_901")
