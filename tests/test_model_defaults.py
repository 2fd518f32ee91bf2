"""A local model's generation_config.json fills the agent settings the user left unset."""

import json
import shutil
from pathlib import Path

import pytest

from tiny_lm import make_tiny_lm
from wideseek.config import AgentConfig, load_config
from wideseek.llm.engine import EngineError
from wideseek.llm.local import LocalEngine
from wideseek.runtime import open_orchestrator, with_model_defaults


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return make_tiny_lm(tmp_path_factory.mktemp("lm"), max_positions=256)


def with_generation_config(model_dir: Path, tmp_path: Path, **fields) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    path = copy / "generation_config.json"
    saved = json.loads(path.read_text())
    path.write_text(json.dumps({**saved, **fields}))
    return copy


def test_greedy_and_response_cap_come_from_the_model_dir(model_dir, tmp_path):
    engine = LocalEngine(with_generation_config(model_dir, tmp_path, do_sample=False,
                                                max_new_tokens=64))  # fmt: skip
    agent = with_model_defaults(AgentConfig(), engine)
    assert (agent.temperature, agent.max_response_tokens) == (0.0, 64)
    assert agent.context_length == 256  # lowered to what the model was built for
    assert agent.top_p == 1.0  # absent from the file: left alone


def test_explicit_settings_win_over_the_model_dir(model_dir, tmp_path):
    engine = LocalEngine(with_generation_config(model_dir, tmp_path, temperature=0.6, top_p=0.9,
                                                max_new_tokens=64))  # fmt: skip
    agent = with_model_defaults(AgentConfig(temperature=1.0, max_response_tokens=8), engine)
    assert (agent.temperature, agent.top_p, agent.max_response_tokens) == (1.0, 0.9, 8)
    # a larger context than the model's is never planned for; a smaller explicit one is kept
    assert with_model_defaults(AgentConfig(context_length=300), engine).context_length == 300
    assert with_model_defaults(AgentConfig(), engine).context_length == 256


def test_a_model_without_sampling_fields_keeps_the_config_defaults(model_dir):
    agent = with_model_defaults(AgentConfig(), LocalEngine(model_dir))
    assert (agent.temperature, agent.max_response_tokens) == (1.0, None)


def test_an_unreadable_generation_config_is_one_clear_error(model_dir, tmp_path):
    broken = with_generation_config(model_dir, tmp_path)
    (broken / "generation_config.json").write_text("{not json")
    with pytest.raises(EngineError, match="unreadable generation config") as e:
        LocalEngine(broken)  # read once, when the model is resolved, before any weights load
    assert "\n" not in str(e.value)


async def test_the_runtime_applies_them_to_the_orchestrator(model_dir, tmp_path, monkeypatch):
    shipped = with_generation_config(model_dir, tmp_path, do_sample=False, max_new_tokens=32)
    monkeypatch.setenv("WIDESEEK_MODEL", str(shipped))
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"id": "1", "url": "u", "title": "t", "text": "x"}) + "\n")
    cfg = load_config(None, [f"tools.corpus={corpus}", "agent.temperature=0.5"])
    async with open_orchestrator(cfg) as orchestrator:
        assert orchestrator.config.temperature == 0.5  # set by the user
        assert orchestrator.config.max_response_tokens == 32  # from the model


async def test_the_limits_a_model_recommends_fill_what_the_user_left_unset(
    model_dir, tmp_path, monkeypatch
):
    shipped = with_generation_config(model_dir, tmp_path, max_new_tokens=64)
    limits = {"lead_turns": 3, "subagent_turns": 4, "max_response_tokens": 16}
    (shipped / "wideseek.json").write_text(json.dumps({"limits": limits}))
    monkeypatch.setenv("WIDESEEK_MODEL", str(shipped))
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"id": "1", "url": "u", "title": "t", "text": "x"}) + "\n")
    cfg = load_config(None, [f"tools.corpus={corpus}", "agent.subagent_turns=9"])
    async with open_orchestrator(cfg) as orchestrator:
        assert orchestrator.config.lead_turns == 3  # the model's
        assert orchestrator.config.max_response_tokens == 16  # its evaluated limit, not 64
        assert orchestrator.config.subagent_turns == 9  # set by the user
