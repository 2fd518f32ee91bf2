"""Tokenised SFT examples are built once per input: cached on disk, built again when an input
changes, the same from a process pool as from one process, and a second SFT run skips them."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from scripted_engine import ScriptedEngine
from test_orchestrator import TASK, responder, tools_for
from tiny_lm import make_tiny_lm
from wideseek.agents.orchestrator import Orchestrator
from wideseek.llm.model_loading import load_tokenizer
from wideseek.train import example_cache, sft_run
from wideseek.train.example_cache import ExampleKey, cache_path, cached_examples, parallel_examples
from wideseek.train.sft_data import trajectory_examples
from wideseek.train.sft_run import SFTRun, plan_run, run_sft
from wideseek.types import write_trajectories

ROLES = ("lead", "subagent", "single")


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return make_tiny_lm(tmp_path_factory.mktemp("lm"), max_positions=2048)


@pytest.fixture(scope="module")
def trajectory():
    return asyncio.run(Orchestrator(ScriptedEngine(responder=responder), tools_for).run(TASK))


@pytest.fixture
def setup(model, trajectory, tmp_path, monkeypatch):
    monkeypatch.setenv("WIDESEEK_CACHE", str(tmp_path / "cache"))
    shutil.copytree(model, tmp_path / "model")
    write_trajectories(tmp_path / "demos.jsonl", [trajectory])
    return tmp_path / "model", tmp_path / "demos.jsonl"


def build_counting(model_dir: Path, demos: Path, max_length: int, calls: list[int]):
    def build():
        calls.append(1)
        tokenizer = load_tokenizer(model_dir)
        return list(trajectory_examples(tokenizer, sft_run.load_trajectories([demos]), max_length))

    return build


def test_a_second_build_reads_the_cache(setup):
    model_dir, demos = setup
    key = ExampleKey((demos,), model_dir, 2048, ROLES)
    calls: list[int] = []
    first = cached_examples(key, build_counting(model_dir, demos, 2048, calls))
    assert first and calls == [1] and cache_path(key).is_file()
    again = cached_examples(key, lambda: pytest.fail("tokenised again"))
    assert again == first


@pytest.mark.parametrize("change", ["trajectories", "tokenizer", "max_length", "roles"])
def test_a_changed_input_builds_again(setup, trajectory, change):
    model_dir, demos = setup
    key = ExampleKey((demos,), model_dir, 2048, ROLES)
    cached_examples(key, build_counting(model_dir, demos, 2048, []))
    if change == "trajectories":
        write_trajectories(demos, [trajectory, trajectory])
    elif change == "tokenizer":
        config = model_dir / "tokenizer_config.json"
        config.write_text(json.dumps({**json.loads(config.read_text()), "model_max_length": 99}))
    changed = {
        "trajectories": key,
        "tokenizer": key,
        "max_length": ExampleKey((demos,), model_dir, 1024, ROLES),
        "roles": ExampleKey((demos,), model_dir, 2048, ("lead",)),
    }[change]
    calls: list[int] = []
    cached_examples(changed, build_counting(model_dir, demos, 2048, calls))
    assert calls == [1]


def test_a_torn_cache_file_is_built_again(setup):
    model_dir, demos = setup
    key = ExampleKey((demos,), model_dir, 2048, ROLES)
    first = cached_examples(key, build_counting(model_dir, demos, 2048, []))
    cache_path(key).write_bytes(cache_path(key).read_bytes()[:100])
    calls: list[int] = []
    assert cached_examples(key, build_counting(model_dir, demos, 2048, calls)) == first
    assert calls == [1]
    assert cached_examples(key, lambda: pytest.fail("tokenised again")) == first  # repaired


def test_a_process_pool_gives_what_one_process_gives(model, trajectory, monkeypatch):
    monkeypatch.setattr(example_cache, "MIN_PARALLEL", 1)
    tokenizer = load_tokenizer(model)
    trajectories = [trajectory] * 3
    one = parallel_examples(tokenizer, trajectories, 2048, ROLES, workers=1)
    assert len(one) > 3
    assert parallel_examples(tokenizer, trajectories, 2048, ROLES, workers=2) == one


def test_a_second_sft_run_skips_tokenising(setup, tmp_path, monkeypatch):
    model_dir, demos = setup
    calls: list[int] = []
    real = sft_run.parallel_examples

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(sft_run, "parallel_examples", counting)
    train = {"epochs": 1, "warmup_steps": 0, "log_every": 1, "lora": {"r": 2}, "dtype": "fp32"}
    fields = {"model": str(model_dir), "trajectories": [str(demos)], "train": train}
    run_sft(SFTRun(out_dir=str(tmp_path / "a"), **fields), show_progress=False)
    assert calls == [1]
    run_sft(SFTRun(out_dir=str(tmp_path / "b"), **fields), show_progress=False)  # a new run
    assert calls == [1]


def test_an_agents_pattern_trains_only_the_agents_it_finds(setup, tmp_path):
    model_dir, demos = setup
    train = {"epochs": 1, "warmup_steps": 0, "lora": {"r": 2}, "dtype": "fp32"}
    fields = {"model": str(model_dir), "trajectories": [str(demos)], "train": train}
    every = plan_run(SFTRun(out_dir=str(tmp_path / "a"), **fields)).roles
    chile = plan_run(SFTRun(out_dir=str(tmp_path / "b"), agents="Chile$", **fields)).roles
    assert every["lead"].examples == 1 and every["subagent"].examples == 2
    assert list(chile) == ["subagent"] and chile["subagent"].examples == 1  # its own cache
    again = plan_run(SFTRun(out_dir=str(tmp_path / "c"), **fields)).roles
    assert again == every  # the cache of every agent was not overwritten by the selection
    with pytest.raises(ValueError, match=r"(?s)agents.*not a regular expression"):
        SFTRun(out_dir="x", agents="(List", **fields)


def test_more_selections_add_their_own_agents_and_limits(setup, tmp_path):
    model_dir, demos = setup
    train = {"epochs": 1, "warmup_steps": 0, "lora": {"r": 2}, "dtype": "fp32"}
    fields = {"model": str(model_dir), "trajectories": [str(demos)], "train": train}
    also = [
        {"trajectories": [str(demos)], "roles": ["lead"]},
        {"trajectories": [str(demos)], "roles": ["subagent"], "role_limits": {"subagent": 1}},
    ]
    run = SFTRun(
        out_dir=str(tmp_path / "a"), roles=["subagent"], agents="Chile$", also=also, **fields
    )
    plan = plan_run(run)
    # the main selection's Chile subagent, the lead, one of the two subagents sampled
    assert plan.roles["lead"].examples == 1 and plan.roles["subagent"].examples == 2
    assert [(label.split(":")[0], f.examples) for label, f in plan.selections.items()] == [
        ("main", 1),
        ("also 1", 1),
        ("also 2", 1),
    ]
    assert next(iter(plan.selections)) == "main: subagent /Chile$/ in " + demos.parent.name
    assert plan_run(run.model_copy(update={"also": []})).selections == {}  # one: by role only
    with pytest.raises(ValueError, match=r"(?s)also\.0\.agents.*not a regular expression"):
        SFTRun(out_dir="x", also=[{"trajectories": [str(demos)], "agents": "(List"}], **fields)
    with pytest.raises(ValueError, match=r"(?s)also\.0\.model.*Extra inputs"):
        SFTRun(out_dir="x", also=[{"trajectories": [str(demos)], "model": "m"}], **fields)


def test_demonstrations_that_finished_in_another_order_give_the_same_examples(setup, trajectory):
    # a run file lists tasks as they finished: made again (another machine), another order
    model_dir, _ = setup
    tokenizer = load_tokenizer(model_dir)

    def run(task_id: str, trial: int):
        task = trajectory.task.model_copy(update={"id": task_id})
        return trajectory.model_copy(update={"task": task, "trial": trial})

    runs = [run(i, trial) for i in ("t3", "t1", "t2") for trial in (1, 0)]
    files = []
    for name, order in (("a", runs), ("b", runs[::-1])):
        write_trajectories(setup[1].parent / f"{name}.jsonl", order)
        files.append(setup[1].parent / f"{name}.jsonl")
    loaded = [sft_run.load_trajectories([f]) for f in files]
    assert [(t.task.id, t.trial) for t in loaded[0]] == [
        ("t1", 0), ("t1", 1), ("t2", 0), ("t2", 1), ("t3", 0), ("t3", 1)]  # fmt: skip
    a, b = (list(trajectory_examples(tokenizer, t, 2048)) for t in loaded)
    assert a == b
    both = sft_run.load_trajectories(files[::-1])  # the files keep their own order
    assert len(both) == 12 and both[:6] == loaded[1] and both[6:] == loaded[0]
