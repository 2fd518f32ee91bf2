"""scripts/train_default_model.sh: which demonstrations it makes and trains on, by wordings and
agent modes, with a stand-in `wideseek` on PATH (stand_in_cli.py)."""

import json
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from stand_in_cli import TRAINING_STAND_IN, calls, run_script, stand_in_env
from wideseek.runtime import world_tasks
from wideseek.train.sft_run import SFTRun
from wideseek.world.oracle.text import member_subtask, question_subject
from wideseek.world.store import load_world

SCRIPT = Path(__file__).parents[1] / "scripts" / "train_default_model.sh"
RUN_FILE = Path(__file__).parents[1] / "configs" / "sft-default.yaml"


@pytest.fixture
def env(tmp_path):
    return stand_in_env(tmp_path, TRAINING_STAND_IN, WIDESEEK_RUN_DIR=str(tmp_path / "run"))


def oracle_and_sft(env) -> tuple[list[str], str]:
    done = run_script(SCRIPT, env, "train.save_every=2")
    assert done.returncode == 0, done.stderr
    oracle = [c for c in calls(env) if c.startswith("world oracle")]
    [sft] = [c for c in calls(env) if c.startswith("train sft")]
    return oracle, sft


def test_the_shipped_recipe_trains_on_template_multi_agent_demonstrations(env, tmp_path):
    oracle, sft = oracle_and_sft(env)
    assert oracle == [
        "world oracle --suite wide --split train --limit 800 --mode multi --wordings template",
        "world oracle --suite deep --split train --limit 1000 --mode multi --wordings template",
        # the keyed-cut listers of more tasks, for the run file's `also`
        "world oracle --suite wide --split train --limit 4000 --out "
        "runs/oracle-wide-train-multi-4000",
    ]
    assert sft == (
        f"train sft --config configs/sft-default.yaml out_dir={tmp_path / 'run'} "
        "trajectories=[runs/oracle-wide-train-multi/trajectories.jsonl,"
        "runs/oracle-deep-train-multi/trajectories.jsonl] train.save_every=2"
    )
    ship = calls(env)[-1]
    assert ship.startswith(f"train ship --model {tmp_path / 'run' / 'sft' / 'final'}")
    assert "--dest src/wideseek/assets/model " in ship  # this checkout's package, to commit
    assert "over the first 20 wide + 20 deep tasks of its split" in ship  # the card says N
    reworded, template = (tmp_path / "run" / f"eval-test-multi{s}" for s in ("-reworded", ""))
    assert f"wordings (test multi)={reworded},{template} " in ship  # compared task by task
    assert (tmp_path / "run" / "scores-test-multi-reworded.json").read_text() == "{}\n"


def test_mixed_wordings_and_the_single_agent_are_demonstrated_and_trained_on(env):
    env |= {"WIDESEEK_WORDINGS": "mixed", "WIDESEEK_MODES": "multi single"}
    oracle, sft = oracle_and_sft(env)
    oracle = [c for c in oracle if "--wordings" in c]  # not the keyed listers' (template)
    assert len(oracle) == 4 and all(c.endswith("--wordings mixed") for c in oracle)
    assert [c.split("--mode ")[1].split()[0] for c in oracle] == ["multi"] * 2 + ["single"] * 2
    made = [f"runs/oracle-{s}-train-{m}-mixed/trajectories.jsonl"
            for m in ("multi", "single") for s in ("wide", "deep")]  # fmt: skip
    assert f"trajectories=[{','.join(made)}]" in sft


def test_a_recipe_on_trial_is_scored_but_not_shipped(env, tmp_path):
    env |= {"WIDESEEK_SHIP": "0"}
    done = run_script(SCRIPT, env)
    assert done.returncode == 0, done.stderr
    assert "not shipped" in done.stdout
    assert not any(c.startswith("train ship") for c in calls(env))
    evals = [c for c in calls(env) if c.startswith("train eval --model")]
    assert len(evals) == 5  # scored, and the model it would replace beside it on the same tasks
    shipped = evals[1]  # right after the trial's own test multi-agent: the pair comes first
    assert evals[0].startswith(f"train eval --model {tmp_path / 'run' / 'sft' / 'final'} ")
    assert " --split test --mode multi " in evals[0] and "--reworded" not in evals[0]
    assert shipped.startswith("train eval --model src/wideseek/assets/model --split test --mode")
    assert " --mode multi " in shipped
    assert shipped.endswith(f"--out {tmp_path / 'run' / 'shipped' / 'eval-test-multi'}")
    [summary] = [line for line in done.stdout.splitlines() if "not shipped" in line]
    assert f"--against {tmp_path / 'run' / 'shipped' / 'eval-test-multi'}" in summary


def test_evaluations_give_the_lead_its_own_cap(env):
    done = run_script(SCRIPT, env | {"WIDESEEK_SHIP": "0"})
    assert done.returncode == 0, done.stderr
    evals = [c for c in calls(env) if c.startswith("train eval")]
    assert len(evals) == 9  # 4 of the model, 4 of the oracle beside them, the shipped model
    assert all("--max-response-tokens 256 --lead-response-tokens 768" in c for c in evals)
    env |= {
        "WIDESEEK_LEAD_RESPONSE_TOKENS": "256",
        "WIDESEEK_RUN_DIR": env["WIDESEEK_RUN_DIR"] + "2",
    }
    assert run_script(SCRIPT, env | {"WIDESEEK_SHIP": "0"}).returncode == 0
    assert any("--lead-response-tokens 256" in c for c in calls(env))


def test_the_run_files_second_selection_is_the_keyed_cuts_of_the_world():
    # `also` trains the element and state spans' listers again: its pattern must find the
    # oracle's subtask for every such train task, and no other task's
    run = SFTRun(**yaml.safe_load(RUN_FILE.read_text(encoding="utf-8")))
    [keyed] = run.also
    pattern = re.compile(keyed.agents)
    families = Counter()
    for task in world_tasks(load_world(), "wide", "train", limit=400):
        subject = question_subject(task.question)
        assert subject is not None, task.id
        picked = bool(pattern.search(member_subtask(subject)))
        assert picked == (subject.family in {"element_range", "states_admitted"}), task.id
        families[subject.family, picked] += 1
    assert families["element_range", True] and families["states_admitted", True]
    assert keyed.roles == ["subagent"] and keyed.role_limits["subagent"] > 0


def test_a_carried_resume_point_is_unpacked_into_the_run_before_training(env, tmp_path):
    carried = tmp_path / "carried"  # as scripts/carry_run.sh saves it
    (carried / "sft").mkdir(parents=True)
    (carried / "evals" / "eval-test-multi" / "wide").mkdir(parents=True)
    (carried / "evals" / "scores-test-multi.json").write_text("")  # cut off: taken again
    env |= {"WIDESEEK_RESUME_FROM": str(carried)}
    done = run_script(SCRIPT, env)
    assert done.returncode == 0, done.stderr
    trained = [c.split()[:2] for c in calls(env) if c.startswith("train ")]
    assert trained[:2] == [["train", "unpack"], ["train", "sft"]]
    assert f"train unpack {carried / 'sft'} {tmp_path / 'run' / 'sft'}" in calls(env)
    assert (tmp_path / "run" / "eval-test-multi" / "wide").is_dir()  # resumed, not begun again
    assert (tmp_path / "run" / "scores-test-multi.json").read_text() == "{}\n"
    env.pop("WIDESEEK_RESUME_FROM")
    (tmp_path / "calls").unlink()
    assert run_script(SCRIPT, env).returncode == 0
    assert not any(c.startswith("train unpack") for c in calls(env))


def test_a_carried_finished_training_is_only_scored(env, tmp_path):
    carried = tmp_path / "carried"  # as carry_run.sh saves a run whose training finished
    (carried / "sft" / "final").mkdir(parents=True)
    (carried / "sft" / "final" / "trainer_state.json").write_text('{"step": 208}')
    (carried / "sft" / "metrics.jsonl").write_text("")
    env |= {"WIDESEEK_RESUME_FROM": str(carried), "WIDESEEK_SHIP": "0"}
    done = run_script(SCRIPT, env)
    assert done.returncode == 0, done.stderr
    assert "final is trained already: scoring it" in done.stdout
    assert not any(c.startswith(("world oracle", "train sft", "train unpack")) for c in calls(env))
    final = tmp_path / "run" / "sft" / "final"
    assert (final / "trainer_state.json").read_text() == '{"step": 208}'
    assert calls(env)[0].startswith(f"train eval --model {final} --split test --mode multi")


def test_kept_scores_are_reused_only_over_the_same_tasks_and_limits(env, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "scores-test-multi.json").write_text('{"wide_item_f1": 0.5, "wide_tasks": 20}')
    done = run_script(SCRIPT, env | {"WIDESEEK_EVAL_TASKS": "20"})
    assert done.returncode == 0, done.stderr
    evals = [c for c in calls(env) if c.startswith("train eval --model")]
    assert not any(" --split test --mode multi " in c and "--reworded" not in c for c in evals)
    (tmp_path / "calls").unlink()
    done = run_script(SCRIPT, env | {"WIDESEEK_EVAL_TASKS": "30"})
    assert done.returncode != 0
    assert "taken otherwise (wide_tasks 20; now tasks 30, lead_turns 4," in done.stderr
    assert not any(c.startswith("train eval") for c in calls(env))  # stopped before any
    # under other limits (a lead cap set otherwise in an earlier session): refused up front too
    limits = {"lead_turns": 4, "lead_response_tokens": 256}
    figures = {"wide_item_f1": 0.5, "wide_tasks": 20, "limits": limits}
    (run / "scores-test-multi.json").write_text(json.dumps(figures))
    done = run_script(SCRIPT, env | {"WIDESEEK_EVAL_TASKS": "20"})
    assert done.returncode != 0
    assert "(lead_response_tokens 256; now tasks 20," in done.stderr
    assert "lead_response_tokens 768, engine torch)" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_an_unreadable_kept_score_is_a_one_line_error(env, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "scores-test-multi.json").write_text("[1, 2")
    done = run_script(SCRIPT, env)
    assert done.returncode != 0
    assert "not a scores file of `train eval`" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_the_engine_asked_for_decodes_every_model_and_keeps_only_its_own_scores(env, tmp_path):
    env |= {"WIDESEEK_EVAL_ENGINE": "llama.cpp", "WIDESEEK_SHIP": "0"}
    done = run_script(SCRIPT, env)
    assert done.returncode == 0, done.stderr
    evals = [c for c in calls(env) if c.startswith("train eval")]
    models = [c for c in evals if "--oracle" not in c]
    assert len(models) == 5  # four suites and the shipped model beside test multi
    assert all(" --engine llama.cpp --out " in c for c in models)
    assert not any("--engine" in c for c in evals if "--oracle" in c)  # it decodes nothing
    # figures kept from a torch evaluation (none recorded: made before engines were) refused
    (tmp_path / "calls").unlink()
    run = tmp_path / "run"
    for kept in run.rglob("*scores-*.json"):
        kept.unlink()
    (run / "scores-test-multi.json").write_text('{"wide_item_f1": 0.5, "wide_tasks": 20}')
    done = run_script(SCRIPT, env)
    assert done.returncode != 0 and not any(c.startswith("train eval") for c in calls(env))
    assert "taken otherwise (engine torch; now tasks 20," in done.stderr
    assert "engine llama.cpp)" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    # the oracle's kept figures stand whatever the engine
    (run / "scores-test-multi.json").write_text('{"wide_tasks": 20, "engine": "llama.cpp"}')
    (run / "oracle-scores-test-multi.json").write_text('{"wide_tasks": 20}')
    done = run_script(SCRIPT, env)
    assert done.returncode == 0, done.stderr
    assert not any(" --split test --mode multi " in c and "--reworded" not in c
                   and "assets/model" not in c for c in calls(env))  # fmt: skip


def test_a_model_scored_by_another_engine_says_so_in_its_card(env):
    done = run_script(SCRIPT, env | {"WIDESEEK_EVAL_ENGINE": "llama.cpp"})
    assert done.returncode == 0, done.stderr
    ship = calls(env)[-1]
    assert ship.startswith("train ship ")
    assert "decoded by the llama.cpp engine" in ship and "--set engine.backend=llama.cpp" in ship
    (Path(env["WIDESEEK_CALLS"])).unlink()
    env |= {"WIDESEEK_RUN_DIR": env["WIDESEEK_RUN_DIR"] + "-torch"}
    assert run_script(SCRIPT, env).returncode == 0
    assert "decoded by" not in calls(env)[-1]  # torch: ask and eval's own where it has bf16
