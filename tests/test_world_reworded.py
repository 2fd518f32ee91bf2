"""Held-out wordings: every task of the world rewords, keeps what it asks, and shares no
sentence with the templates; the oracle still answers them (the gold did not move)."""

from __future__ import annotations

import json

import pytest

from test_suite_runner import run_cli
from wideseek.types import Task
from wideseek.world import load_world
from wideseek.world.reworded import RewordError, reword
from wideseek.world.suites import suite_tasks


@pytest.fixture(scope="module")
def world():
    return load_world()


def template_sentences(world) -> set[str]:
    """Every line of every training question: what the model was fine-tuned on."""
    lines: set[str] = set()
    for suite in ("wide", "deep"):
        for task in suite_tasks(world, suite, "train"):
            lines.update(task.question.split("\n"))
    return lines


@pytest.mark.parametrize("split", ["dev", "test"])
def test_every_task_rewords_keeping_its_slots_and_no_training_sentence(world, split):
    seen = template_sentences(world)
    for suite in ("wide", "deep"):
        for task in suite_tasks(world, suite, split):
            new = reword(task)
            assert new.id == task.id and new.evaluation == task.evaluation
            assert new.golden_answers == task.golden_answers
            kept_notes = {"国家名称请使用中文。"} | {
                line for line in task.question.split("\n") if "units" in line or "单位" in line
            }
            fresh = [line for line in new.question.split("\n") if line not in kept_notes]
            assert fresh and not set(fresh) & seen, new.question
            if suite == "wide":
                for column in task.evaluation["required"]:
                    assert column in new.question


def test_deep_slots_come_back_out_of_the_question(world):
    task = next(t for t in suite_tasks(world, "deep", "test") if t.metadata["shape"] ==
                "country_capital")  # fmt: skip
    country = task.question.removeprefix("What is the capital of ").removesuffix("?")
    assert reword(task).question == f"Name the capital city of {country}."


def test_a_task_the_world_did_not_make_is_one_clear_error():
    odd = Task(id="x1", question="Tell me everything.", kind="qa", metadata={"shape": "nope"})
    with pytest.raises(RewordError, match="x1: no held-out wording"):
        reword(odd)
    unslotted = Task(id="x3", question="What is the capital of Peru?", kind="qa",
                     metadata={"shape": "country_capital"})  # fmt: skip
    with pytest.raises(RewordError, match="x3: not a world deep task"):
        reword(unslotted)
    wide = Task(id="x2", question="Tabulate stuff.", kind="wide",
                evaluation={"required": ["A"]})  # fmt: skip
    with pytest.raises(RewordError, match="x2: not a world wide task"):
        reword(wide)


def test_rewording_reads_the_slots_the_world_recorded_not_the_question(world):
    """The slots come from the metadata written with the question: a question edited after
    the fact does not change the rewording (a regex over the question would)."""
    wide = next(t for t in suite_tasks(world, "wide", "test") if t.language == "en")
    edited = wide.model_copy(update={"question": "Something else entirely."})
    assert reword(edited).question == reword(wide).question
    assert wide.metadata["subject"] in reword(wide).question


def test_the_oracle_answers_the_reworded_tasks(tmp_path):
    for suite in ("wide", "deep"):
        out = tmp_path / suite
        assert run_cli(["eval", "world", "--oracle", "--reworded", "--suite", suite,
                        "--split", "dev", "--limit", "3", "--out", str(out)]) == 0  # fmt: skip
        rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        metric = "item_f1" if suite == "wide" else "em"
        assert len(rows) == 3 and all(r["scores"][metric] == 1.0 for r in rows)
        question = json.loads((out / "trajectories.jsonl").read_text().splitlines()[0])
        assert "held-out" not in question  # (sanity: trajectories are written)
