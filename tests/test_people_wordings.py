"""Training questions in people's words (world/people_wordings): every task has one, it keeps
what it asks, it shares no sentence with the held-out wordings, `ask`'s column reader reads
its columns back, and the oracle still answers it."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from test_suite_runner import run_cli
from wideseek.config import Config
from wideseek.runtime.suite import run_suite
from wideseek.runtime.table_request import infer_columns
from wideseek.types import read_trajectories
from wideseek.world import load_world
from wideseek.world.oracle.engine import OracleEngine
from wideseek.world.people_wordings import DEEP_PHRASINGS, people_wording, training_wordings
from wideseek.world.reworded import DEEP_WORDINGS, TEMPLATE_QUESTION, WIDE_WORDINGS, wide_slots
from wideseek.world.suites import suite_tasks
from wideseek.world.wide_tasks import closing_line, table_instruction


@pytest.fixture(scope="module")
def world():
    return load_world()


def held_out_prefixes() -> tuple[str, ...]:
    """The literal start of every held-out sentence (before its first slot)."""
    sentences = [*DEEP_WORDINGS.values(), *(s for w in WIDE_WORDINGS.values() for s in w)]
    return tuple(s.split("{")[0] for s in sentences if s.split("{")[0].strip())


def deep_phrasings(task) -> list[str]:
    slots = task.metadata["slots"]
    return [p.format(*slots) for p in DEEP_PHRASINGS[task.metadata["shape"]]]


def test_every_deep_shape_has_other_sentences_none_of_them_held_out(world):
    shapes = {task.metadata["shape"] for task in suite_tasks(world, "deep", "train")}
    assert shapes == set(DEEP_PHRASINGS) == set(DEEP_WORDINGS)
    for shape, phrasings in DEEP_PHRASINGS.items():
        assert DEEP_WORDINGS[shape] not in phrasings and len(set(phrasings)) == len(phrasings)


def test_deep_people_wordings_use_the_shapes_other_sentences(world):
    tasks = suite_tasks(world, "deep", "train")[:200]
    worded = [people_wording(task, random.Random(i)).question for i, task in enumerate(tasks)]
    other = sum(any(p in q for p in deep_phrasings(t)) for t, q in zip(tasks, worded, strict=True))
    assert 0 < other < len(tasks)  # some keep the template's sentence, some take another


@pytest.mark.parametrize("split", ["train", "test"])
def test_every_task_has_a_people_wording_sharing_nothing_with_the_held_out_ones(world, split):
    rng, prefixes = random.Random(0), held_out_prefixes()
    for suite in ("wide", "deep"):
        for task in suite_tasks(world, suite, split):
            for with_columns in (True, False):
                new = people_wording(task, rng, with_columns=with_columns)
                assert new.id == task.id and new.evaluation == task.evaluation
                assert new.golden_answers == task.golden_answers
                assert new.metadata[TEMPLATE_QUESTION] == task.question
                assert not any(line.startswith(prefixes) for line in new.question.split("\n"))
                if suite == "deep":
                    sentences = [task.question.strip(), *deep_phrasings(task)]
                    assert any(sentence in new.question for sentence in sentences)
                    continue
                assert new.question != task.question
                _, header, notes = wide_slots(task)
                lines = new.question.split("\n")
                assert all(note in lines for note in notes)
                table = table_instruction(task.language, header)
                assert (table in new.question) == with_columns
                assert (closing_line(task.language) in new.question) == with_columns


def test_asks_columns_are_read_back_from_every_english_people_wording(world):
    """The phrasings are what `ask` turns into a table request: its reader must get the
    template's exact column titles from the person's sentence alone."""
    rng, misses, asked = random.Random(1), [], 0
    for task in suite_tasks(world, "wide", "test"):
        if task.language != "en":
            continue
        sentence = people_wording(task, rng, with_columns=False).question.split("\n")[0]
        asked += 1
        if infer_columns(sentence) != wide_slots(task)[1]:
            misses.append(sentence)
    assert asked > 100 and misses == []


async def test_the_oracle_answers_people_worded_tasks_as_well_as_the_template(world, tmp_path):
    rng = random.Random(2)
    tasks = suite_tasks(world, "wide", "test")[:3] + suite_tasks(world, "deep", "test")[:3]
    worded = [people_wording(t, rng, with_columns=i % 2 == 0) for i, t in enumerate(tasks)]
    config = Config.model_validate({"tools": {"corpus": str(world.corpus_path)}})
    scores = {}
    for name, batch in (("template", tasks), ("people", worded)):
        run = await run_suite(
            batch, config, tmp_path / name, suite="mixed", engine=OracleEngine(batch),
            show_progress=False,
        )  # fmt: skip
        scores[name] = {r.instance_id: r.scores for r in run.rows}
    assert len(scores["people"]) == 6 and scores["people"] == scores["template"]
    headline = [s.get("item_f1", s.get("em")) for s in scores["people"].values()]
    assert all(h is not None for h in headline) and sum(headline) > 0, scores["people"]


def test_training_wordings_draw_by_task_id_alone(world):
    tasks = suite_tasks(world, "wide", "train")[:30]
    mixed = training_wordings(tasks, "mixed")
    again = {t.id: t.question for t in training_wordings(list(reversed(tasks))[:10], "mixed")}
    assert all(again[t.id] == t.question for t in mixed if t.id in again)
    forms = Counter(
        "template" if t.question == o.question else
        "stated" if closing_line(o.language) in t.question else "unstated"
        for t, o in zip(mixed, tasks, strict=True)
    )  # fmt: skip
    assert set(forms) == {"template", "stated", "unstated"}
    people = training_wordings(tasks, "people")
    assert all(t.question != o.question for t, o in zip(people, tasks, strict=True))
    assert training_wordings(tasks, "template") == tasks
    with pytest.raises(ValueError, match="wordings"):
        training_wordings(tasks, "shouted")


def test_world_oracle_writes_people_worded_demonstrations_in_a_run_of_their_own(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    assert run_cli(["world", "oracle", "--split", "train", "--limit", "6"]) == 0
    assert run_cli(["world", "oracle", "--split", "train", "--limit", "6", "--wordings",
                    "people"]) == 0  # fmt: skip
    template = read_trajectories(tmp_path / "runs/oracle-wide-train-multi/trajectories.jsonl")
    people = read_trajectories(tmp_path / "runs/oracle-wide-train-multi-people/trajectories.jsonl")
    asked = {t.task.id: t.task.question for t in template}
    assert len(people) == 6 and all(t.task.question != asked[t.task.id] for t in people)
    assert all(t.scores["item_f1"] == 1.0 for t in people)
    info = json.loads((tmp_path / "runs/oracle-wide-train-multi-people/run.json").read_text())
    assert info["suite"] == "world-wide-train-people"
    code = run_cli(["world", "oracle", "--split", "train", "--wordings", "shouted"])
    assert code != 0 and "--wordings" in capsys.readouterr().err
