"""scripts/train_stage2.sh: stage 2 trained from the start model, both scored in the three
evaluations under the same limits (scripts/score.sh), figures kept, and each pair reported;
with a stand-in `wideseek` on PATH (stand_in_cli.py)."""

from pathlib import Path

from stand_in_cli import TRAINING_STAND_IN, calls, run_script, stand_in_env

SCRIPT = Path(__file__).parents[1] / "scripts" / "train_stage2.sh"


def test_both_models_are_scored_three_ways_and_paired(tmp_path):
    run, start = tmp_path / "run", tmp_path / "start-model"
    env = stand_in_env(
        tmp_path,
        TRAINING_STAND_IN,
        WIDESEEK_RUN_DIR=str(run),
        WIDESEEK_START_MODEL=str(start),
        WIDESEEK_EVAL_TASKS="7",
    )
    done = run_script(SCRIPT, env)
    assert done.returncode == 0, done.stderr
    made = calls(env)
    assert (
        f"train sft --config configs/sft-stage2.yaml model={start} out_dir={run / 'single'}" in made
    )
    evals = [c for c in made if c.startswith("train eval")]
    assert [c.split("--model ")[1].split()[0] for c in evals] == (
        [str(run / "single" / "sft" / "final")] * 3 + [str(start)] * 3
    )
    # the limits stage 1 was scored under (scripts/score.sh), the answer's writer's cap too
    assert all("--wide 7 --deep 7 --lead-turns 4" in c for c in evals)
    assert all("--max-response-tokens 256 --lead-response-tokens 768" in c for c in evals)
    assert [c.split("--out ")[1] for c in evals[3:]] == [
        str(run / "start" / f"eval-{slug}")
        for slug in ("test-multi-reworded", "test-multi", "test-single")
    ]
    assert (run / "start" / "scores-test-single.json").read_text() == "{}\n"
    assert sum(c.startswith("report") for c in made) == 3

    again = run_script(SCRIPT, env)  # every figure is kept: nothing is evaluated twice
    assert again.returncode == 0, again.stderr
    assert sum(c.startswith("train eval") for c in calls(env)) == 6


def test_a_stage_1_start_reuses_its_scores(tmp_path):
    run = tmp_path / "run"
    (run / "sft" / "final").mkdir(parents=True)
    for slug in ("test-multi", "test-multi-reworded", "test-single"):  # train_default_model.sh's
        (run / f"scores-{slug}.json").write_text("{}\n")
    env = stand_in_env(
        tmp_path,
        TRAINING_STAND_IN,
        WIDESEEK_RUN_DIR=str(run),
        WIDESEEK_START_MODEL=str(run / "sft" / "final"),
    )
    assert run_script(SCRIPT, env).returncode == 0
    evals = [c for c in calls(env) if c.startswith("train eval")]
    assert len(evals) == 3 and all("single/sft/final" in c for c in evals)
    reports = [c for c in calls(env) if c.startswith("report")]
    assert reports[0].endswith(f"--against {run / 'eval-test-multi-reworded'} --no-plots")
