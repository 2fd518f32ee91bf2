"""`wideseek train ...`: a whole tiny run from the command line, and one-line errors."""

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from scripted_engine import ScriptedEngine
from test_orchestrator import TASK, responder, tools_for
from tiny_lm import make_tiny_lm
from wideseek.agents.orchestrator import Orchestrator
from wideseek.cli import main
from wideseek.types import write_trajectories
from wideseek.world.store import load_world


def run(argv) -> int:
    with pytest.raises(SystemExit) as e:
        main(argv)
    return e.value.code


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    model = make_tiny_lm(root, max_positions=2048)
    traj = asyncio.run(Orchestrator(ScriptedEngine(responder=responder), tools_for).run(TASK))
    write_trajectories(root / "demos.jsonl", [traj])
    return root, model


def write_config(root, model_dir, **extra):
    config = {
        "model": str(model_dir),
        "out_dir": str(root / "run"),
        "trajectories": [str(root / "demo*.jsonl")],
        "probe_trajectories": [str(root / "demos.jsonl")],
        "train": {"epochs": 4, "warmup_steps": 1, "log_every": 1, "eval_every": 2},
        **extra,
    }
    path = root / "run.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def test_sft_from_the_command_line(setup, capsys):
    root, model = setup
    config = write_config(root, model)
    assert run(["train", "sft", "--config", str(config), "train.lr=3e-3", "--no-progress"]) == 0
    assert (root / "run" / "sft" / "final" / "model.safetensors").exists()
    rows = [
        json.loads(x) for x in (root / "run" / "sft" / "metrics.jsonl").read_text().splitlines()
    ]
    evals = [r["eval"] for r in rows if "eval" in r]
    assert [e["step"] for e in evals] == [2, 4]
    assert evals[-1]["probe_loss"] < evals[0]["probe_loss"]
    assert {"probe_copy_acc", "probe_field_acc", "probe_token_acc"} <= set(evals[0])


def test_plan_says_the_steps_and_tokens_the_run_then_takes(setup, tmp_path, capsys):
    root, model = setup
    config = write_config(root, model, out_dir=str(tmp_path / "run"), probe_trajectories=[])
    overrides = ["train.batch_tokens=512", "train.grad_accum=2", "train.epochs=1.5"]
    assert run(["train", "sft", "--config", str(config), *overrides, "--plan"]) == 0
    printed = capsys.readouterr().out
    assert not (tmp_path / "run").exists()  # nothing trained
    assert "lead" in printed and "subagent" in printed and "all" in printed
    assert "by selection" not in printed  # one selection: by role only
    assert run(["train", "sft", "--config", str(config), *overrides, "--no-progress"]) == 0
    last = json.loads((tmp_path / "run" / "sft" / "metrics.jsonl").read_text().splitlines()[-1])
    assert f"{last['step']:,} optimizer steps, {last['tokens_seen']:,} tokens read" in printed


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "sft", "--config", "missing.yaml"], "cannot read config"),
        (["train", "eval", "--model", "nowhere", "--out", "x"], "not a model directory"),
        (["train", "eval", "--out", "x"], "give --model DIR or --oracle"),
        (["train", "eval", "--oracle", "--model", "m", "--out", "x"], "one of them"),
    ],
)
def test_bad_arguments_are_one_line_errors(argv, message, capsys):
    assert run(argv) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_sft_past_its_memory_limit_restarts_itself_and_finishes(setup, tmp_path):
    root, model = setup
    config = write_config(root, model, out_dir=str(tmp_path / "run"))
    command = [sys.executable, "-m", "wideseek", "train", "sft", "--config", str(config)]
    limit = ["train.restart_above_gb=0.000001", "--no-progress"]  # always passed
    done = subprocess.run([*command, *limit], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    restarts = done.stderr.count("restarting from the checkpoint with a fresh heap")
    assert restarts == 1  # after step 2 (a process's second); the new one ends at step 4
    assert "final model:" in done.stdout
    rows = [json.loads(x) for x in (tmp_path / "run" / "sft" / "metrics.jsonl").open()]
    assert [r["step"] for r in rows if "step" in r] == [1, 2, 3, 4]
    assert [r["eval"]["step"] for r in rows if "eval" in r] == [2, 4]


def test_eval_prints_scores(setup, tmp_path, capsys):
    _, model = setup
    argv = ["train", "eval", "--model", str(model), "--out", str(tmp_path), "--wide", "0"]
    argv += ["--deep", "1", "--max-response-tokens", "4", "--context-length", "2048"]
    assert run(argv) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["deep_em"] == 0.0 and "call_validity" in scores
    assert scores["world"] == load_world().manifest.world_hash[:16]  # what `train ship` cards
    assert scores["engine"] == "torch"  # what scripts/score.sh keeps figures by
    # auto, recorded as the engine it picked (this model's base is no GGUF file): a resumed
    # run compares engines by it
    info = json.loads((tmp_path / "deep" / "run.json").read_text())
    assert info["extra"]["config"]["engine"]["backend"] == "torch"
    assert run([*argv, "--mode", "both"]) == 1
    assert "--mode" in capsys.readouterr().err


def test_eval_decodes_with_the_engine_asked_for(setup, tmp_path, monkeypatch, capsys):
    import wideseek.cli.eval

    _, model = setup
    used = []
    monkeypatch.setattr(wideseek.cli.eval, "world_eval", lambda cfg, *a, **k: used.append(cfg))
    argv = ["train", "eval", "--model", str(model), "--out", str(tmp_path)]
    assert run([*argv, "--engine", "llama.cpp"]) == 0
    assert used[0].engine.backend == "llama.cpp" and used[0].agent.temperature == 0.0
    assert run([*argv, "--engine", "vllm"]) != 0
    assert "vllm" in capsys.readouterr().err


def test_eval_takes_the_model_s_recommended_limits_unless_flags_say_otherwise(
    setup, tmp_path, capsys
):
    _, model = setup
    recommending = tmp_path / "model"
    shutil.copytree(model, recommending)
    limits = {"lead_turns": 2, "subagent_turns": 3, "max_response_tokens": 4}
    (recommending / "wideseek.json").write_text(json.dumps({"limits": limits}))
    argv = ["train", "eval", "--model", str(recommending), "--wide", "0", "--deep", "1"]
    assert run([*argv, "--out", str(tmp_path / "a")]) == 0
    used = json.loads(capsys.readouterr().out)["limits"]
    # the evaluation limits' 4,096 for the rest, lowered to the 2,048 positions the model holds
    assert used == {**limits, "context_length": 2048}
    assert run([*argv, "--out", str(tmp_path / "b"), "--lead-turns", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["limits"]["lead_turns"] == 1


def test_bad_run_files_are_one_line_errors(setup, tmp_path, capsys):
    root, model = setup
    cases = [
        ({"trajectories": [str(tmp_path / "none.jsonl")]}, "no such trajectory file"),
        ({"train": {"learning_rate": 1}}, "learning_rate: Extra inputs"),
        ({"model": str(tmp_path)}, "not a model directory"),
        ({"warmup": {"pages": 40}}, "warmup: Extra inputs"),
        ({"out_dir": str(tmp_path / "o"), "train": {"max_length": 10}}, "no usable examples"),
    ]
    for extra, message in cases:
        config = write_config(root, model, **extra)
        assert run(["train", "sft", "--config", str(config), "--no-progress"]) == 1
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err, err


def test_ship_installs_a_loadable_model_with_its_card_and_defaults(setup, tmp_path, capsys):
    from wideseek.config import AgentConfig
    from wideseek.llm.local import LocalEngine
    from wideseek.llm.resolved_model import resolve_model
    from wideseek.runtime import with_model_defaults
    from wideseek.train.shipping import weights_dtypes

    _, model = setup
    limits = {"lead_turns": 4, "subagent_turns": 5, "max_response_tokens": 64}
    scores = tmp_path / "dev.json"
    world = "a0fe57656e49caee"  # the world `train eval` took them on
    scores.write_text(
        json.dumps({"wide_item_f1": 0.25, "deep_em": 0.5, "limits": limits, "world": world})
    )
    dest = tmp_path / "shipped"
    argv = ["train", "ship", "--model", str(model), "--dest", str(dest), "--name", "my-model"]
    assert run([*argv, "--scores", f"dev={scores}"]) == 0
    assert "shipped" in capsys.readouterr().out
    assert not (dest / "trainer_state.json").exists()
    card = (dest / "README.md").read_text()
    assert card.startswith("# my-model\n")
    assert "| wide_item_f1 | 0.2500 |" in card and "| metric | dev |" in card
    assert "lead_turns 4" in card and "| limits |" not in card
    assert "Taken on world a0fe57656e49caee (" in card and "| world |" not in card
    assert json.loads((dest / "wideseek.json").read_text()) == {"name": "my-model",
                                                                "limits": limits}  # fmt: skip
    assert "stored in bfloat16, cast when shipped from the float32" in card
    assert weights_dtypes(resolve_model(dest)) == {"bfloat16"}  # half the bytes on disk
    engine = LocalEngine(dest)
    assert engine.model_name == "my-model"  # read from the directory
    assert engine.tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    agent = with_model_defaults(AgentConfig(), engine)
    assert (agent.temperature, agent.max_response_tokens) == (0.0, 64)  # the response cap too
    assert (agent.lead_turns, agent.subagent_turns) == (4, 5)
    # shipped again without scores (a model trained on from it, say): its limits stay
    assert run(["train", "ship", "--model", str(dest), "--dest", str(tmp_path / "again")]) == 0
    assert json.loads((tmp_path / "again" / "wideseek.json").read_text())["limits"] == limits


def test_a_resumed_phase_reports_the_wall_time_of_every_process(tmp_path):
    from wideseek.train.shipping import phase_summary

    # a run stopped after step 2 and resumed twice: elapsed_s restarts with each process
    elapsed = [100.0, 200.0, 90.0, 180.0, 95.0]
    rows = [{"step": i + 1, "loss": 1.0 / (i + 1), "tokens_seen": 10 * (i + 1), "elapsed_s": s}
            for i, s in enumerate(elapsed)]  # fmt: skip
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    phase = phase_summary(metrics)
    assert (phase.steps, phase.tokens, phase.wall_s) == (5, 50, 200 + 180 + 95)
    # rows that name their process: one stopped at 401 s, the next logged 429.7 s (the older
    # rows' test, a lower elapsed time, saw one process there), then a third
    named = [(1, 300.0, 1), (2, 401.0, 1), (3, 429.7, 2), (4, 98.3, 3), (5, 198.6, 3)]
    rows = [{"step": k, "loss": 0.1, "tokens_seen": k, "elapsed_s": s, "started": p}
            for k, s, p in named]  # fmt: skip
    metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert phase_summary(metrics).wall_s == pytest.approx(401.0 + 429.7 + 198.6)


def test_the_card_gives_wall_time_in_a_unit_that_reads():
    from wideseek.train.shipping import _duration

    # a GPU run of seconds and a CPU run resumed over days, in one column
    assert [_duration(s) for s in (89.4, 2520, 31301)] == ["89 s", "42 min", "8.7 h"]


def test_ship_cards_the_examples_remade_under_a_training(setup, tmp_path):
    _, model = setup
    remade = tmp_path / "final"
    shutil.copytree(model, remade)
    sig = lambda n, t: {"examples": n, "tokens": t, "order": f"o{n}"}  # noqa: E731
    state = {"step": 9, "data": sig(30, 3000),
             "data_changes": [{"step": 2, "from": sig(10, 1000)},
                              {"step": 5, "from": sig(20, 2000)}]}  # fmt: skip
    (remade / "trainer_state.json").write_text(json.dumps(state))
    assert run(["train", "ship", "--model", str(remade), "--dest", str(tmp_path / "a")]) == 0
    card = (tmp_path / "a" / "README.md").read_text()
    first = card.index(
        "After step 2 its training went on over examples remade on another "
        "machine (10 examples, 1,000 tokens before, 20 examples, 2,000 tokens"
    )
    assert first < card.index(
        "After step 5 its training went on over examples remade on "
        "another machine (20 examples, 2,000 tokens before, 30 examples"
    )
    assert run(["train", "ship", "--model", str(model), "--dest", str(tmp_path / "b")]) == 0
    assert "remade" not in (tmp_path / "b" / "README.md").read_text()


def test_ship_casts_weights_only_when_asked_to_a_new_dtype(setup, tmp_path):
    from safetensors.torch import load_file

    from wideseek.llm.resolved_model import resolve_model
    from wideseek.train.shipping import weights_dtypes

    _, model = setup
    trained = load_file(model / "model.safetensors")
    base = ["train", "ship", "--model", str(model)]
    assert run([*base, "--dest", str(tmp_path / "kept"), "--weights-dtype", "keep"]) == 0
    assert (tmp_path / "kept" / "model.safetensors").read_bytes() == (
        model / "model.safetensors"
    ).read_bytes()
    assert "stored in" not in (tmp_path / "kept" / "README.md").read_text()
    assert run([*base, "--dest", str(tmp_path / "half")]) == 0
    shipped = tmp_path / "half" / "model.safetensors"
    umask = os.umask(0)
    os.umask(umask)
    assert shipped.stat().st_mode & 0o777 == 0o644 & ~umask  # readable by all, not save_file's 0600
    half = load_file(shipped)
    assert half.keys() == trained.keys()
    for name, tensor in trained.items():  # the same values, rounded to bf16
        assert half[name].dtype == torch.bfloat16
        assert torch.equal(half[name], tensor.to(torch.bfloat16)), name
    # shipping the shipped model again casts nothing and says nothing about it
    assert run(["train", "ship", "--model", str(tmp_path / "half"), "--dest",
                str(tmp_path / "again")]) == 0  # fmt: skip
    assert weights_dtypes(resolve_model(tmp_path / "again")) == {"bfloat16"}
    assert "stored in" not in (tmp_path / "again" / "README.md").read_text()


def write_phase(run_dir: Path, phase: str, tokens: int, written: float, **row) -> None:
    """One training phase's metrics.jsonl (a row at step 5) under `run_dir`, its file time
    set to `written`."""
    (run_dir / phase).mkdir(parents=True)
    row = {"step": 5, "loss": 0.5, "tokens_seen": tokens, "elapsed_s": 90.0, **row}
    (run_dir / phase / "metrics.jsonl").write_text(json.dumps(row) + "\n")
    os.utime(run_dir / phase / "metrics.jsonl", (written, written))


def test_ship_cards_every_training_phase_of_the_run_in_order(setup, tmp_path):
    _, model = setup
    run_dir = tmp_path / "run"
    # stage 1 (sft/), then stage 2 trained on from it (single/sft/); written in that order
    write_phase(run_dir, "sft", 4_000_000, written=0)
    write_phase(run_dir, "single/sft", 1_400_000, written=1)
    dest = tmp_path / "shipped"
    assert run(["train", "ship", "--model", str(model), "--dest", str(dest), "--run",
                str(run_dir)]) == 0  # fmt: skip
    card = (dest / "README.md").read_text()
    assert card.index("| sft | 5 | 4,000,000 |") < card.index("| single/sft | 5 | 1,400,000 |")
    # stage 1's own model, shipped (again) after stage 2 ran: stage 2 is not its history
    shutil.copytree(model, run_dir / "sft" / "final")
    assert run(["train", "ship", "--model", str(run_dir / "sft" / "final"), "--dest",
                str(tmp_path / "stage1"), "--run", str(run_dir)]) == 0  # fmt: skip
    card = (tmp_path / "stage1" / "README.md").read_text()
    assert "| sft | 5 | 4,000,000 |" in card and "single/sft" not in card


def test_a_stage_1_resumed_after_stage_2_still_comes_first_on_the_card(setup, tmp_path):
    _, model = setup
    run_dir = tmp_path / "run"
    # stage 1 began first (`started`) but its file was written last: resumed after stage 2
    write_phase(run_dir, "sft", 4_000_000, written=9, started=100.0)
    write_phase(run_dir, "single/sft", 900, written=5, started=200.0)
    dest = tmp_path / "shipped"
    assert run(["train", "ship", "--model", str(model), "--dest", str(dest), "--run",
                str(run_dir)]) == 0  # fmt: skip
    card = (dest / "README.md").read_text()
    assert card.index("| sft | 5 | 4,000,000 |") < card.index("| single/sft | 5 | 900 |")


def test_a_model_trained_on_from_a_shipped_one_cards_both_histories(setup, tmp_path):
    from wideseek.llm.model_dir import read_model_info

    _, model = setup
    run_dir = tmp_path / "run"
    (run_dir / "sft").mkdir(parents=True)
    row = {"step": 190, "loss": 0.008, "tokens_seen": 4_679_784, "elapsed_s": 31_200.0}
    (run_dir / "sft" / "metrics.jsonl").write_text(json.dumps(row) + "\n")
    first = tmp_path / "first"
    assert run(["train", "ship", "--model", str(model), "--dest", str(first), "--run",
                str(run_dir)]) == 0  # fmt: skip
    assert read_model_info(first).training["sft"].tokens == 4_679_784  # kept with the weights
    # stage 2 in another run (the first run's metrics gone), trained on from the shipped model
    second_run = tmp_path / "second"
    (second_run / "single" / "sft").mkdir(parents=True)
    row = {"step": 28, "loss": 0.02, "tokens_seen": 900_000, "elapsed_s": 2_900.0}
    (second_run / "single" / "sft" / "metrics.jsonl").write_text(json.dumps(row) + "\n")
    dest = tmp_path / "shipped"
    assert run(["train", "ship", "--model", str(model), "--dest", str(dest), "--run",
                str(second_run), "--trained-from", str(first)]) == 0  # fmt: skip
    card = (dest / "README.md").read_text()
    assert card.index("| sft | 190 | 4,679,784 | 8.7 h |") < card.index("| single/sft | 28 |")
    assert list(read_model_info(dest).training) == ["sft", "single/sft"]


def test_ship_puts_an_evaluations_error_analysis_in_the_card(setup, tmp_path):
    from wideseek.eval.runner import RESULTS, RUN_INFO, TRAJECTORIES, ResultRow, RunInfo
    from wideseek.types import AgentRun, Task, Trajectory

    _, model = setup
    wide = tmp_path / "eval" / "wide"  # `train eval --out eval` writes one run per suite
    wide.mkdir(parents=True)
    info = RunInfo(suite="world-wide-test", mode="multi", profile="wideseek", model="m", trials=1)
    (wide / RUN_INFO).write_text(info.model_dump_json())
    short = {"item_f1": 0.3, "answer_rows": 3, "gold_rows": 25}
    rows = [
        ResultRow(instance_id="a", trial=0, scores=short, failures={"malformed_call": 2}),
        ResultRow(instance_id="b", trial=0, scores={"item_f1": 0.0, "msg": "no markdown table"}),
        ResultRow(instance_id="c", trial=0, language="zh", scores={"item_f1": 0.5}),
    ]
    (wide / RESULTS).write_text("".join(r.model_dump_json() + "\n" for r in rows))
    lister = AgentRun(agent_id=1, role="subagent", prompt="List the rows.", answer="1. x\n2. y")
    lead = AgentRun(agent_id=0, role="lead", prompt="q")
    traj = Trajectory(task=Task(id="a", question="q"), mode="multi", agents=[lead, lister],
                      scores=short)  # fmt: skip
    (wide / TRAJECTORIES).write_text(traj.model_dump_json() + "\n")
    dest = tmp_path / "shipped"
    argv = ["train", "ship", "--model", str(model), "--dest", str(dest)]
    assert run([*argv, "--errors", f"test multi={tmp_path / 'eval'}"]) == 0
    card = (dest / "README.md").read_text()
    assert "## Where it fails" in card and "### test multi" in card
    assert "| 21+ | 1 | 0.300 | 3.0 | 25.0 |" in card
    assert "no markdown table ×1" in card and "malformed_call 2" in card
    assert "By language: wide item F1 en 0.150, zh 0.500." in card
    assert "1 of 1 wide runs; names listed against gold rows: fewer 1, as many 0" in card


def test_ship_compares_two_evaluations_task_by_task_in_the_card(setup, tmp_path, capsys):
    from wideseek.eval.runner import RESULTS, RUN_INFO, ResultRow, RunInfo

    _, model = setup
    for name, f1 in (("template", (0.5, 0.2, 1.0)), ("reworded", (0.25, 0.2, 0.0))):
        wide = tmp_path / name / "wide"
        wide.mkdir(parents=True)
        suite = "world-wide-test" + "-reworded" * (name == "reworded")
        info = RunInfo(suite=suite, mode="multi", profile="wideseek", model="m", trials=1)
        (wide / RUN_INFO).write_text(info.model_dump_json())
        rows = [ResultRow(instance_id=task, trial=0, scores={"item_f1": score})
                for task, score in zip("abc", f1, strict=True)]  # fmt: skip
        (wide / RESULTS).write_text("".join(r.model_dump_json() + "\n" for r in rows))
    dest = tmp_path / "shipped"
    argv = ["train", "ship", "--model", str(model), "--dest", str(dest)]
    pair = f"held-out wordings={tmp_path / 'reworded'},{tmp_path / 'template'}"
    assert run([*argv, "--paired", pair]) == 0
    card = (dest / "README.md").read_text()
    assert "## Task by task" in card and "### held-out wordings" in card
    assert "| wide | item_f1 | 3 | 0.150 | 0.567 | -0.417 |" in card  # A better on none of 3
    assert "| 0 / 2 / 1 |" in card
    assert "A = reworded, B = template" in card and str(tmp_path) not in card  # no local paths
    assert "A and B differ in" in card and "not only the model" not in card  # on purpose
    for bad, message in (("x", "expected NAME=A,B"), (f"x={dest},{dest}", "no run found")):
        assert run([*argv, "--paired", bad]) == 1, bad
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err, err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--errors", "test"], "expected NAME=DIR"),
        (["--errors", "test=nowhere"], "no run found"),
        (["--scores", "dev"], "expected NAME=FILE"),
        (["--scores", "dev=missing.json"], "cannot read scores JSON"),
        (["--scores", "a=a.json", "--scores", "b=b.json"], "taken under different limits"),
        (["--scores", "a=a.json", "--scores", "c=c.json"], "taken under different worlds"),
    ],
)
def test_ship_errors_are_one_line(setup, tmp_path, extra, message, capsys, monkeypatch):
    _, model = setup
    monkeypatch.chdir(tmp_path)
    for name, turns, world in (("a", 4, "c463790ae92b9581"), ("b", 6, None), ("c", 4, "a0fe")):
        figures = {"limits": {"lead_turns": turns}, "world": world}
        (tmp_path / f"{name}.json").write_text(json.dumps(figures))
    assert run(["train", "ship", "--model", str(model), "--dest", str(tmp_path), *extra]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_ship_refuses_an_incomplete_model_dir(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    assert run(["train", "ship", "--model", str(tmp_path / "m"), "--dest", str(tmp_path / "d")])
    err = capsys.readouterr().err.strip()
    assert "not a model directory" in err and "\n" not in err
    assert not (tmp_path / "d").exists()
