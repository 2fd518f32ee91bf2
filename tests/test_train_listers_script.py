"""scripts/train_listers.sh: the lister stage trained from stage 1, both scored under the same
limits, the start's existing scores reused, and the pairing printed; with a stand-in `wideseek`
on PATH (stand_in_cli.py)."""

from pathlib import Path

import pytest

from stand_in_cli import TRAINING_STAND_IN, calls, run_script, stand_in_env

SCRIPT = Path(__file__).parents[1] / "scripts" / "train_listers.sh"


@pytest.fixture
def env(tmp_path):
    return stand_in_env(tmp_path, TRAINING_STAND_IN, WIDESEEK_RUN_DIR=str(tmp_path / "run"))


def test_the_stage_trains_from_stage_1_and_both_are_scored_and_paired(env, tmp_path):
    run = tmp_path / "run"
    done = run_script(SCRIPT, env, "train.save_every=4")
    assert done.returncode == 0, done.stderr
    made = calls(env)
    assert made[0] == "world oracle --suite wide --split train --limit 800"
    assert made[1] == (
        f"train sft --config configs/sft-listers.yaml model={run / 'sft' / 'final'} "
        f"out_dir={run / 'listers'} train.save_every=4"
    )
    evals = [c for c in made if c.startswith("train eval")]
    assert [c.split("--model ")[1].split()[0] for c in evals] == (
        [str(run / "listers" / "sft" / "final"), str(run / "sft" / "final")] * 2
    )
    assert ["--reworded" in c for c in evals] == [False, False, True, True]
    assert all("--wide 30 --deep 30" in c and "--lead-response-tokens 768" in c for c in evals)
    assert sum("--reworded" in c for c in evals) == 2
    reports = [c for c in made if c.startswith("report")]
    assert reports == [
        f"report {run / 'listers' / 'eval-test-multi'} --against {run / 'eval-test-multi'} "
        "--no-plots",
        f"report {run / 'listers' / 'eval-test-multi-reworded'} --against "
        f"{run / 'eval-test-multi-reworded'} --no-plots",
    ]


def test_scores_already_taken_are_not_taken_again(env, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for slug in ("test-multi", "test-multi-reworded"):  # stage 1's, by train_default_model.sh
        (run / f"scores-{slug}.json").write_text("{}\n")
    env |= {"WIDESEEK_START_MODEL": str(tmp_path / "elsewhere")}
    assert run_script(SCRIPT, env).returncode == 0
    evals = [c for c in calls(env) if c.startswith("train eval")]
    assert len(evals) == 2 and all("listers" in c for c in evals)
    assert f"model={tmp_path / 'elsewhere'}" in calls(env)[1]
