"""scripts/rl_demo.sh in parts: what each part asks `wideseek train rl` for, with a stand-in
`wideseek` on PATH that records its arguments and writes what a run leaves behind."""

import subprocess
from pathlib import Path

import pytest

from stand_in_cli import calls, run_script, stand_in_env

SCRIPT = Path(__file__).parents[1] / "scripts" / "rl_demo.sh"

# the stand-in: a 0-step run leaves pass-rates.json and its dev evaluation; an arm leaves final/
# and two metrics rows; a sweep its sweep.json
FAKE_WIDESEEK = """
if sys.argv[1] == "report":
    print("paired:", sys.argv[2], "against", sys.argv[4])
    sys.exit(0)
if sys.argv[1:3] == ["eval", "sweep"]:
    out = pathlib.Path(sys.argv[sys.argv.index("--out") + 1])
    out.mkdir(parents=True)
    (out / "sweep.json").write_text("{}")
    sys.exit(0)
out = pathlib.Path(args["out_dir"])
out.mkdir(parents=True, exist_ok=True)
if args.get("steps") == "0":
    (out / "pass-rates.json").write_text("{}")
    evaluated = (0,)
else:
    (out / "final").mkdir()
    gain = 0.1 * int(args["seed"])
    rows = [{"step": s, "policy_version": s, "reward_mean": 0.5, "reward_std": 0.1,
             "dev_wide_item_f1": 0.3 + gain * s / 6, "dev_deep_em": 0.5} for s in (0, 6)]
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\\n" for r in rows))
    evaluated = (0, 6)
for step in evaluated:
    scored = out / "dev-eval" / f"step-{step}" / "wide"
    scored.mkdir(parents=True)
    (scored / "results.jsonl").write_text("{}\\n")
    (scored / "run.json").write_text("{}")
    (scored / "trajectories.jsonl").write_text("large\\n")
    (scored.parent / "policy.json").write_text('{"start": "abc"}')
"""


@pytest.fixture
def env(tmp_path):
    return stand_in_env(tmp_path, FAKE_WIDESEEK, WIDESEEK_RUN_DIR=str(tmp_path / "rl"))


def demo(env, *args) -> subprocess.CompletedProcess:
    return run_script(SCRIPT, env, *args)


def test_an_arm_needs_the_preparation_which_runs_once_with_zero_steps(env):
    run = Path(env["WIDESEEK_RUN_DIR"])
    refused = demo(env, "arm", "multi", "1")
    assert refused.returncode == 2 and "run 'bash scripts/rl_demo.sh prepare'" in refused.stderr
    for _ in range(2):  # the second time: done already, nothing runs
        assert demo(env, "prepare", "steps=6").returncode == 0
    [prepare] = calls(env)
    assert prepare.endswith("steps=6 steps=0")  # an override cannot make it train
    assert f"model=src/wideseek/assets/model out_dir={run / 'prepare'}" in prepare


def test_arms_borrow_the_preparation_and_compare_by_mode(env):
    run = Path(env["WIDESEEK_RUN_DIR"])
    assert demo(env, "compare").returncode == 2  # no arm yet
    assert demo(env, "prepare").returncode == 0
    for mode, seed in (("multi", "1"), ("multi", "2"), ("single", "1")):
        done = demo(env, "arm", mode, seed, "lr=1e-4")
        assert done.returncode == 0, done.stderr
    arms = calls(env)[1:]
    assert len(arms) == 3 and all("lr=1e-4" in a for a in arms)
    assert f"select.pass_rate.measured_in={run / 'prepare'}" in arms[0]
    assert "mode=single" in arms[2] and f"out_dir={run / 'single-s1'}" in arms[2]
    assert "eval.mode=multi" in arms[0] and "eval.mode=single" in arms[2]  # as each trains
    # the start model's evaluation is made once a mode (by the preparation, of the multi-agent
    # system, else the first seed), and taken after; the trainer checks that it fits
    assert f"eval_start_in={run / 'prepare'}" in arms[0]
    assert f"eval_start_in={run / 'multi-s1'}" in arms[1]
    assert f"eval_start_in={run / 'prepare'}" in arms[2]
    # a finished arm is said to be done, not run again under new overrides
    again = demo(env, "arm", "multi", "1", "lr=5e-5")
    assert again.returncode == 0 and "multi-s1 is done" in again.stderr
    assert len(calls(env)) == 4
    compared = demo(env, "compare")
    assert compared.returncode == 0, compared.stderr
    table = (run / "compare.txt").read_text()
    assert "multi" in table and "single" in table and (run / "curves.png").exists()
    # each arm's last dev evaluation paired with its first
    for arm in ("multi-s1", "multi-s2", "single-s1"):
        assert f"## {arm}: step-6 against step-0" in table
        evals = run / arm / "dev-eval"
        assert f"paired: {evals / 'step-6'} against {evals / 'step-0'}" in table


def test_keep_copies_the_small_files_of_each_part(env, tmp_path):
    run = Path(env["WIDESEEK_RUN_DIR"])
    assert demo(env, "prepare").returncode == 0
    (run / "prepare" / "metrics.jsonl").write_text("{}\n")
    assert demo(env, "arm", "multi", "1").returncode == 0
    kept = demo(env, "keep", str(tmp_path / "kept"))
    assert kept.returncode == 0, kept.stderr
    files = sorted(str(f.relative_to(tmp_path / "kept")) for f in (tmp_path / "kept").rglob("*")
                   if f.is_file())  # fmt: skip
    assert files == [
        "multi-s1/dev-eval/step-0/policy.json",  # what made it: a borrowing arm takes it
        "multi-s1/dev-eval/step-0/wide/results.jsonl", "multi-s1/dev-eval/step-0/wide/run.json",
        "multi-s1/dev-eval/step-6/policy.json",
        "multi-s1/dev-eval/step-6/wide/results.jsonl", "multi-s1/dev-eval/step-6/wide/run.json",
        "multi-s1/metrics.jsonl",
        "prepare/dev-eval/step-0/policy.json", "prepare/dev-eval/step-0/wide/results.jsonl",
        "prepare/dev-eval/step-0/wide/run.json",
        "prepare/dev-eval/step-0/wide/trajectories.jsonl",  # whole: the arms borrow it
        "prepare/metrics.jsonl", "prepare/pass-rates.json",
    ]  # fmt: skip


def test_every_part_runs_the_start_model_it_is_given(env, tmp_path):
    env |= {"WIDESEEK_RL_START": str(tmp_path / "stage1")}
    for part in (("prepare",), ("arm", "single", "1")):
        assert demo(env, *part).returncode == 0
    assert all(f"model={tmp_path / 'stage1'} " in c for c in calls(env))
    assert demo(env, "sweep").returncode == 0
    sweeps = [c for c in calls(env) if c.startswith("eval sweep")]
    assert f"--model {tmp_path / 'stage1'} " in sweeps[0]  # the start; then the first RL model
    assert f"--model {Path(env['WIDESEEK_RUN_DIR']) / 'multi-s1' / 'final'} " in sweeps[1]
