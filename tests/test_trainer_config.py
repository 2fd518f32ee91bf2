"""Trainer run files (SFT and RL): every field has help, and a typo anywhere, however deep, is one
`error:` line from the command before any trainer starts (so before any model loads); the same
for broken YAML and for the run files and `--set` values of the commands that run agents."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from test_suite_runner import run_cli
from wideseek.config import read_yaml_tree, validate_tree
from wideseek.train import sft_run
from wideseek.train.rl import trainer as rl_trainer
from wideseek.train.rl.config import RLConfig
from wideseek.train.sft import SFTConfig
from wideseek.train.sft_run import SFTRun


def undocumented(model: type[BaseModel], prefix: str = "") -> list[str]:
    """The fields of `model` and of every section nested in it (directly, in a list or a
    dict, or optional) that have no description."""
    found = []
    for name, field in model.model_fields.items():
        if not field.description:
            found.append(prefix + name)
        todo, seen = [field.annotation], set()
        while todo:  # unwrap Optional, list[...], dict[..., ...], Literal, Annotated
            t = todo.pop()
            if isinstance(t, type) and issubclass(t, BaseModel) and t not in seen:
                seen.add(t)
                found += undocumented(t, f"{prefix}{name}.")
            todo += [a for a in typing.get_args(t) if not isinstance(a, str | int | float)]
    return found


@pytest.mark.parametrize("config", [SFTRun, SFTConfig, RLConfig])
def test_every_field_of_every_trainer_config_has_help(config):
    assert undocumented(config) == []


def test_the_walker_finds_a_field_without_help_in_a_nested_section():
    class Inner(BaseModel):
        bare: int = 0

    class Outer(BaseModel):
        sections: list[Inner] | None = None

    assert undocumented(Outer) == ["sections", "sections.bare"]


@pytest.fixture
def no_trainer(monkeypatch):
    """The trainers, replaced: a run file that reaches one got past its checks."""
    started: list[str] = []

    def never(name):
        def start(*args, **kwargs):
            started.append(name)
            raise AssertionError(f"{name} started")

        return start

    monkeypatch.setattr(sft_run, "run_sft", never("sft"))
    monkeypatch.setattr(rl_trainer, "train_rl", never("rl"))
    return started


def _check_one_line(argv, capsys, started, where, path):
    assert run_cli(argv) != 0
    err = capsys.readouterr().err.strip()
    assert err.count("error:") == 1 and len(err.splitlines()) == 1, err
    assert "Traceback" not in err and where in err and str(path) in err
    assert started == []  # refused when the file loaded: no model was loaded


@pytest.mark.parametrize(
    ("override", "where"),
    [
        ("lr_typo=1e-5", "lr_typo: Extra inputs are not permitted"),
        ("shaping.format_bonsu=0.1", "shaping.format_bonsu: Extra inputs are not permitted"),
        ("agent.lead_turn=3", "agent.lead_turn: Extra inputs are not permitted"),
        ("clip.eps_hihg=0.3", "clip.eps_hihg: Extra inputs are not permitted"),
        ("guards.min_outcom=0", "guards.min_outcom: Extra inputs are not permitted"),
        ("lora.rr=4", "lora.rr: Extra inputs are not permitted"),
        ("eval.agent.lead_turn=3", "eval.agent: lead_turn: Extra inputs are not permitted"),
        ("eval.wide_task=3", "eval.wide_task: Extra inputs are not permitted"),
        ("agent.top_p=0.9", "agent.top_p: RL samples with top_p 1"),
        ("agent.top_k=20", "agent.top_k: RL samples with top_k 0"),
        ("agent.temperature=0.7", "agent.temperature: RL sets it from `temperature`"),
        ("credit=some", "credit: Input should be 'published', 'all' or 'healthy'"),
        ("dtype=bf17", "dtype: Input should be 'auto', 'bf16', 'fp16' or 'fp32'"),
        ("select.pass_rate.mni=0.1", "select.pass_rate.mni: Extra inputs are not permitted"),
        ("select.pass_rate.min=1.5", "select.pass_rate.min: Input should be less than or equal"),
        ("select.first=0", "select.first: Input should be greater than or equal to 1"),
        ("select.resample=2", "select.resample: Extra inputs are not permitted"),
    ],
)
def test_a_typo_in_an_rl_run_file_is_one_line_before_any_model_loads(
    tmp_path, capsys, no_trainer, override, where
):
    path = tmp_path / "rl.yaml"  # the model does not exist: loading it would fail otherwise
    path.write_text(yaml.safe_dump({"model": str(tmp_path / "nowhere"), "out_dir": "run"}))
    argv = ["train", "rl", "--config", str(path), override]
    _check_one_line(argv, capsys, no_trainer, where, path)


@pytest.mark.parametrize(
    ("override", "where"),
    [
        ("train.lr_typo=1e-3", "train: lr_typo: Extra inputs are not permitted"),
        ("train.lora.rr=4", "train: lora.rr: Extra inputs are not permitted"),
        ("train.dtype=bf17", "train: dtype: Input should be 'auto', 'bf16', 'fp16' or 'fp32'"),
        ("train.model=other", "train: model: set at the top of the run file"),
        ("dev_eval.wide_task=3", "dev_eval.wide_task: Extra inputs are not permitted"),
        ("dev_eval.agent.lead_turn=3", "dev_eval.agent: lead_turn: Extra inputs"),
        ("role_limits.subagnet=300", "role_limits.subagnet.[key]: Input should be 'lead'"),
        ("roles=[lead,sub]", "roles.1: Input should be 'lead', 'subagent' or 'single'"),
    ],
)
def test_a_typo_in_an_sft_run_file_is_one_line_before_any_model_loads(
    tmp_path, capsys, no_trainer, override, where
):
    path = tmp_path / "sft.yaml"
    run = {"model": str(tmp_path / "nowhere"), "out_dir": "run", "trajectories": ["t.jsonl"]}
    path.write_text(yaml.safe_dump({**run, "train": {"lora": {"r": 4}}}))
    argv = ["train", "sft", "--config", str(path), override]
    _check_one_line(argv, capsys, no_trainer, where, path)


@pytest.fixture
def no_agents(monkeypatch):
    """The world runner, replaced: an `eval world` run file that reaches it got past its checks."""
    from wideseek.cli import eval as eval_cli

    started: list[str] = []

    def never(*args, **kwargs):
        started.append("eval")
        raise AssertionError("eval started")

    monkeypatch.setattr(eval_cli, "run_world", never)
    return started


@pytest.mark.parametrize(
    ("command", "text", "where"),
    [
        (["train", "rl"], "out_dir: run\nagent: [1\n", "invalid YAML at line 3, column 1: "),
        (["train", "sft"], "train:\n  lr: 1\n lora: 2\n", "invalid YAML at line 3, column 2: "),
        (["eval", "world"], "agent:\n  lead_turn: 3\n", "agent.lead_turn: Extra inputs are not"),
        (["eval", "world"], "engine: {model: 'x}\n", "invalid YAML at line 2, column 1: found"),
    ],
)
def test_a_broken_run_file_of_any_command_is_one_line_before_anything_runs(
    tmp_path, capsys, no_trainer, no_agents, command, text, where
):
    """PyYAML's own message quotes the line over several; the error names line and column."""
    path = tmp_path / "run.yaml"
    path.write_text(text)
    _check_one_line([*command, "--config", str(path)], capsys, no_trainer + no_agents, where, path)


def test_a_broken_override_value_is_one_line(capsys, no_agents):
    assert run_cli(["eval", "world", "--set", "agent.lead_turns=[1"]) != 0
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: override 'agent.lead_turns=[1': invalid YAML value at line 1, column 3: "
        "expected ',' or ']', but got '<stream end>' while parsing a flow sequence"
    )
    assert no_agents == []


@pytest.mark.parametrize("name", ["sft-default", "sft-stage2", "sft-listers", "sft-refresh"])
def test_the_shipped_sft_run_files_are_valid(name):
    path = Path(__file__).parent.parent / "configs" / f"{name}.yaml"
    run = validate_tree(SFTRun, read_yaml_tree(path), path)
    if name == "sft-listers":  # its pattern picks the listing subtasks, English and Chinese
        wanted = re.compile(run.agents or "")
        assert wanted.search("List the 9 most populous cities of Nigeria.")
        assert wanted.search("列出与乍得陆地接壤的所有国家，每行一个名称，按顺序编号。")
        assert not wanted.search("For each of these cities, find Population: Lagos (Nigeria).")
    if name == "sft-refresh":  # every other agent beside the listers: no role left out
        trained = {(role, s.agents) for s in (run, *run.also) for role in s.roles}
        assert {"lead", "subagent"} <= {role for role, _ in trained}
        assert ("subagent", r"^(?!List\b|列出)") in trained  # the lookups too
