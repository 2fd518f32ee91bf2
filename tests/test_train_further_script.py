"""scripts/train_further.sh: a later stage trained from a start model on a run file's
selection, both scored under the same limits, the start's existing scores reused, and the
pairing printed; with a stand-in `wideseek` on PATH (stand_in_cli.py)."""

from pathlib import Path

import pytest

from stand_in_cli import TRAINING_STAND_IN, calls, run_script, stand_in_env

SCRIPT = Path(__file__).parents[1] / "scripts" / "train_further.sh"
SHIPPED = "src/wideseek/assets/model"


@pytest.fixture
def env(tmp_path):
    return stand_in_env(tmp_path, TRAINING_STAND_IN, WIDESEEK_RUN_DIR=str(tmp_path / "run"))


def test_the_stage_trains_from_the_shipped_model_and_both_are_scored_and_paired(env, tmp_path):
    run = tmp_path / "run"
    done = run_script(SCRIPT, env, "configs/sft-refresh.yaml", "train.save_every=4")
    assert done.returncode == 0, done.stderr
    made = calls(env)
    assert made[:2] == [
        "world oracle --suite wide --split train --limit 800",
        "world oracle --suite deep --split train --limit 1000",
    ]
    assert made[2] == (
        f"train sft --config configs/sft-refresh.yaml model={SHIPPED} "
        f"out_dir={run / 'refresh'} train.save_every=4"
    )
    evals = [c for c in made if c.startswith("train eval")]
    assert [c.split("--model ")[1].split()[0] for c in evals] == (
        [str(run / "refresh" / "sft" / "final"), SHIPPED] * 2
    )
    assert ["--reworded" in c for c in evals] == [False, False, True, True]
    assert all("--wide 30 --deep 30" in c and "--lead-response-tokens 768" in c for c in evals)
    assert [c.split("--out ")[1] for c in evals] == [
        str(run / "refresh" / "eval-test-multi"),
        str(run / "start" / "eval-test-multi"),
        str(run / "refresh" / "eval-test-multi-reworded"),
        str(run / "start" / "eval-test-multi-reworded"),
    ]
    reports = [c for c in made if c.startswith("report")]
    assert reports == [
        f"report {run / 'refresh' / 'eval-test-multi'} --against "
        f"{run / 'start' / 'eval-test-multi'} --no-plots",
        f"report {run / 'refresh' / 'eval-test-multi-reworded'} --against "
        f"{run / 'start' / 'eval-test-multi-reworded'} --no-plots",
    ]


def test_a_stage_1_start_reuses_its_scores(env, tmp_path):
    run = tmp_path / "run"
    (run / "sft" / "final").mkdir(parents=True)
    for slug in ("test-multi", "test-multi-reworded"):  # stage 1's, by train_default_model.sh
        (run / f"scores-{slug}.json").write_text("{}\n")
    # named another way (a trailing slash, a link): the same directory
    env |= {"WIDESEEK_START_MODEL": f"{run}/sft/final/"}
    assert run_script(SCRIPT, env, "configs/sft-listers.yaml").returncode == 0
    assert f"model={run}/sft/final/ out_dir={run / 'listers'}" in calls(env)[2]
    evals = [c for c in calls(env) if c.startswith("train eval")]
    assert len(evals) == 2 and all("listers" in c for c in evals)
    reports = [c for c in calls(env) if c.startswith("report")]
    assert reports[0].endswith(f"--against {run / 'eval-test-multi'} --no-plots")


def test_without_a_run_file_it_says_how_to_call_it(env):
    done = run_script(SCRIPT, env)
    assert done.returncode != 0
    assert "usage: scripts/train_further.sh CONFIG" in done.stderr
    assert calls(env) == []
