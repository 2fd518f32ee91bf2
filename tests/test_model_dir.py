"""A broken model directory is one `error:` line from every command that loads one."""

import asyncio
import json
import shutil

import pytest

from scripted_engine import ScriptedEngine
from test_orchestrator import TASK, responder, tools_for
from tiny_lm import make_tiny_lm
from wideseek.agents.orchestrator import Orchestrator
from wideseek.cli import main
from wideseek.llm.model_dir import ModelDirError
from wideseek.llm.model_loading import load_causal_lm, load_tokenizer
from wideseek.types import write_trajectories


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return make_tiny_lm(tmp_path_factory.mktemp("lm"))


BREAKS = {
    "torn config.json": ("config.json", "{", "cannot load tokenizer"),
    "truncated weights": ("model.safetensors", "not safetensors", "cannot load model"),
    "torn tokenizer.json": ("tokenizer.json", '{"version": ', "cannot load tokenizer"),
}


def broken(good, tmp_path, what):
    name, text, _ = BREAKS[what]
    shutil.copytree(good, tmp_path / "m")
    (tmp_path / "m" / name).write_text(text)
    return tmp_path / "m"


def run(argv):
    with pytest.raises(SystemExit) as e:
        main(argv)
    return e.value.code


def test_a_good_directory_loads(good):
    assert load_causal_lm(good).config.num_hidden_layers == 2
    assert load_tokenizer(good).pad_token is not None


def test_a_load_draws_no_bar_into_a_log(good, capfd):
    # stderr is captured here, as in a run under nohup: the bar's redraws would fill the log
    from transformers.utils import logging as hf_logging

    load_causal_lm(good)
    assert "Loading weights" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled()  # turned back on for whoever shares the process


@pytest.mark.parametrize("what", sorted(BREAKS))
def test_a_broken_directory_is_a_model_dir_error(good, tmp_path, what):
    model = broken(good, tmp_path, what)
    with pytest.raises(ModelDirError, match=f"{model}: {BREAKS[what][2]}"):
        load_tokenizer(model)
        load_causal_lm(model)


@pytest.mark.parametrize("what", sorted(BREAKS))
def test_commands_print_one_line(good, tmp_path, capsys, what):
    model = broken(good, tmp_path, what)
    traj = asyncio.run(Orchestrator(ScriptedEngine(responder=responder), tools_for).run(TASK))
    write_trajectories(tmp_path / "demos.jsonl", [traj])
    run_file = {"model": str(model), "out_dir": str(tmp_path / "run")}
    run_file["trajectories"] = [str(tmp_path / "demos.jsonl")]
    config = tmp_path / "run.yaml"
    config.write_text(json.dumps(run_file))
    commands = [
        ["ask", "Capital of Peru?", "--model", str(model), "--out", str(tmp_path / "t.json")],
        ["serve", "--model", str(model)],
        ["train", "sft", "--config", str(config)],
        ["train", "eval", "--model", str(model), "--out", str(tmp_path / "eval")],
    ]
    for argv in commands:
        assert run(argv) == 1, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith(f"error: {model}: cannot load"), (argv, err)
