"""Tool profiles are one object each: config, tools, orchestrator and oracle all read it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from run_tasks import run_many
from wideseek.agents.orchestrator import Orchestrator
from wideseek.config import AgentConfig, ConfigError, load_config
from wideseek.eval.task_scoring import TaskScorer
from wideseek.profiles import PROFILES, WIDESEEK, WIDESEEK_R1, get_profile
from wideseek.tools.local_corpus import LocalCorpus
from wideseek.world import load_world
from wideseek.world.oracle import OracleEngine
from wideseek.world.suites import suite_tasks


def test_unknown_profiles_and_moved_keys_are_config_errors():
    known = r"unknown tool profile 'r2' \(known: wideseek, wideseek-r1\)"
    with pytest.raises(ConfigError, match=known):
        load_config(None, ["agent.profile=r2"])
    with pytest.raises(ConfigError, match=r"agent\.page_chars: moved to tools\.page_chars"):
        load_config(None, ["agent.page_chars=100"])
    with pytest.raises(ConfigError, match=r"agent\.lead_turnz"):  # a typo is not ignored
        load_config(None, ["agent.lead_turnz=3"])
    assert load_config(None, ["tools.page_chars=100"]).tools.page_chars == 100


def test_delegate_arguments_round_trip_in_every_profile():
    for profile in PROFILES.values():
        arguments = profile.delegate_arguments(["find A", "find B"])
        assert profile.subtasks_of(arguments) == ["find A", "find B"]
        assert set(arguments) == set(profile.delegate_parameters()["required"])
    assert WIDESEEK_R1.subtasks_of({"sub_agents": [{"prompt": " "}, {"prompt": "x"}]}) == ["x"]


def test_call_rules_per_role():
    assert WIDESEEK.max_calls_per_turn("lead", 5) == 1  # the lead delegates once per turn
    assert WIDESEEK.items_per_turn("subagent", 5) == 5
    assert WIDESEEK_R1.max_calls_per_turn("subagent", 5) == 1  # only the first call runs...
    assert WIDESEEK_R1.items_per_turn("subagent", 5) == 5  # ...but it batches 5 items
    assert WIDESEEK_R1.items_per_turn("single", 5) == 1  # the r1 single agent is scalar


async def test_a_third_profile_is_one_object_that_every_part_follows(monkeypatch):
    """A new profile (renamed tools, wrapped subtasks, scalar calls, main task shown) registered
    as one object runs end to end: schemas, call rules, subtask messages and the oracle."""
    custom = replace(
        WIDESEEK_R1,
        name="custom",
        delegate_tool="spawn_workers",
        delegate_key="jobs",
        subagent_batches=False,
        first_call_only=False,
        access_needs_info=False,
    )
    monkeypatch.setitem(PROFILES, "custom", custom)
    assert get_profile("custom") is custom
    world = load_world()
    tasks = suite_tasks(world, "wide", "dev")[:2]
    config = AgentConfig(profile="custom")
    orchestrator = Orchestrator.with_backend(
        OracleEngine(tasks, config), LocalCorpus(world.corpus_path), config
    )
    trajectories = await run_many(orchestrator, tasks)
    for task, traj in zip(tasks, trajectories, strict=True):
        assert traj.error is None and traj.profile == "custom"
        lead = traj.agents[0]
        assert [s["function"]["name"] for s in lead.tool_schemas] == ["spawn_workers"]
        assert {c.name for t in lead.turns for c in t.tool_calls} == {"spawn_workers"}
        assert traj.subagents
        for sub in traj.subagents:
            assert sub.messages[1].content.startswith("Main task: ")  # shown, as r1 does
            # scalar calls (the wideseek call shape under r1's other rules)
            calls = [c for t in sub.turns for c in t.tool_calls]
            assert calls and all("query" in c.arguments or "url" in c.arguments for c in calls)
        assert (await TaskScorer()(task, traj))["item_f1"] == 1.0, task.id
