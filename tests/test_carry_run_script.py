"""scripts/carry_run.sh: the default model's run directory carried between machines: the
training packed (`wideseek train pack`, a stand-in here: stand_in_cli.py) or, once finished, its
final model as it is, and every evaluation so far, finished or not, copied beside it and put
back without replacing what a run holds."""

import filecmp
from pathlib import Path

import pytest

from stand_in_cli import calls, run_script, stand_in_env

SCRIPT = Path(__file__).parents[1] / "scripts" / "carry_run.sh"

# pack and unpack as folders that say what was packed
PACKING_STAND_IN = """
if sys.argv[1:3] == ["train", "pack"]:
    pathlib.Path(sys.argv[4]).mkdir(parents=True, exist_ok=True)
    (pathlib.Path(sys.argv[4]) / "carried.json").write_text('{"step": 65}')
if sys.argv[1:3] == ["train", "unpack"]:
    (pathlib.Path(sys.argv[4]) / "checkpoint-65").mkdir(parents=True)
"""


@pytest.fixture
def env(tmp_path):
    return stand_in_env(tmp_path, PACKING_STAND_IN)


def a_run_mid_scoring(run: Path) -> Path:
    """A run whose training has a checkpoint, one evaluation finished and one cut off."""
    (run / "sft" / "checkpoint-65").mkdir(parents=True)
    (run / "scores-test-multi.json").write_text('{"wide": {"item_f1": 0.5}}\n')
    (run / "scores-test-multi-reworded.json").write_text("")  # a stop mid-evaluation
    for slug, done in (("test-multi", 30), ("test-multi-reworded", 7)):
        suite = run / f"eval-{slug}" / "wide"
        suite.mkdir(parents=True)
        rows = "".join(f'{{"instance_id": "w{i}"}}\n' for i in range(done))
        (suite / "results.jsonl").write_text(rows + '{"instance_id": "w')  # a torn tail too
    (run / "shipped" / "eval-test-multi").mkdir(parents=True)
    (run / "shipped" / "scores-test-multi.json").write_text("{}\n")
    (run / "single" / "sft" / "checkpoint-9").mkdir(parents=True)  # another script's training
    return run


def test_a_run_saved_then_restored_elsewhere_holds_the_same_evaluations(env, tmp_path):
    run, carried, elsewhere = a_run_mid_scoring(tmp_path / "run"), tmp_path / "c", tmp_path / "e"
    saved = run_script(SCRIPT, env, "save", str(run), str(carried))
    assert saved.returncode == 0, saved.stderr
    assert calls(env) == [f"train pack {run / 'sft'} {carried / 'sft.part'}"]  # swapped in
    assert (carried / "sft" / "carried.json").exists()
    assert not (carried / "evals" / "sft").exists()  # the training travels packed, not copied
    assert not (carried / "evals" / "single").exists()  # nor is any other training carried
    restored = run_script(SCRIPT, env, "restore", str(carried), str(elsewhere))
    assert restored.returncode == 0, restored.stderr
    assert calls(env)[-1] == f"train unpack {carried / 'sft'} {elsewhere / 'sft'}"
    for entry in ("eval-test-multi", "eval-test-multi-reworded", "shipped"):
        same = filecmp.dircmp(run / entry, elsewhere / entry)
        assert not (same.left_only or same.right_only or same.diff_files)
    for figures in ("scores-test-multi.json", "scores-test-multi-reworded.json"):
        assert (elsewhere / figures).read_bytes() == (run / figures).read_bytes()


def rows(folder: Path) -> int:
    return (folder / "wide" / "results.jsonl").read_text().count("\n")


def test_restore_keeps_what_the_run_already_holds(env, tmp_path):
    run, carried = a_run_mid_scoring(tmp_path / "run"), tmp_path / "c"
    assert run_script(SCRIPT, env, "save", str(run), str(carried)).returncode == 0
    local = tmp_path / "further"
    for slug, done in (("test-multi", 3), ("test-multi-reworded", 20)):  # both cut off here
        (local / f"eval-{slug}" / "wide").mkdir(parents=True)
        (local / f"eval-{slug}" / "wide" / "results.jsonl").write_text('{"id": 0}\n' * done)
        (local / f"scores-{slug}.json").write_text("")
    (local / "shipped").mkdir()
    (local / "shipped" / "scores-test-multi.json").write_text('{"mine": 1}\n')  # finished here
    done = run_script(SCRIPT, env, "restore", str(carried), str(local))
    assert done.returncode == 0, done.stderr
    # finished there, cut off here: the carried evaluation, its folder with its figures
    assert rows(local / "eval-test-multi") == 30
    assert (local / "scores-test-multi.json").read_bytes() == (
        run / "scores-test-multi.json"
    ).read_bytes()
    # cut off on both machines: the run's own is kept
    assert "eval-test-multi-reworded is cut off here as there; this one kept" in done.stdout
    assert rows(local / "eval-test-multi-reworded") == 20
    assert (local / "shipped" / "scores-test-multi.json").read_text() == '{"mine": 1}\n'
    assert not list(local.rglob(".*.part"))


def test_a_run_with_nothing_scored_yet_is_carried(env, tmp_path):
    run, carried = tmp_path / "run", tmp_path / "c"
    (run / "sft" / "checkpoint-65").mkdir(parents=True)
    done = run_script(SCRIPT, env, "save", str(run), str(carried))
    assert done.returncode == 0, done.stderr
    assert (carried / "sft" / "carried.json").exists() and not list((carried / "evals").iterdir())
    done = run_script(SCRIPT, env, "restore", str(carried), str(tmp_path / "e"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "e" / "sft" / "checkpoint-65").is_dir()


def test_a_finished_training_travels_as_its_final_model_not_packed(env, tmp_path):
    run, carried = a_run_mid_scoring(tmp_path / "run"), tmp_path / "c"
    final = run / "sft" / "final"
    final.mkdir()
    (final / "trainer_state.json").write_text('{"step": 207}')
    (final / "adapter_model.safetensors").write_bytes(bytes(range(256)))  # fp32, as scored
    (run / "sft" / "metrics.jsonl").write_text('{"step": 207, "loss": 0.03}\n')
    assert run_script(SCRIPT, env, "save", str(run), str(carried)).returncode == 0
    assert not calls(env)  # nothing packed (rounded): the model as it was scored
    elsewhere = tmp_path / "e"
    assert run_script(SCRIPT, env, "restore", str(carried), str(elsewhere)).returncode == 0
    assert not calls(env)  # nor unpacked
    same = filecmp.dircmp(final, elsewhere / "sft" / "final")
    assert not (same.left_only or same.right_only or same.diff_files)
    assert (elsewhere / "sft" / "metrics.jsonl").read_text() == (
        run / "sft" / "metrics.jsonl"
    ).read_text()
    assert (elsewhere / "eval-test-multi").is_dir()


def test_saving_again_replaces_the_evaluations_carried_before(env, tmp_path):
    run, carried = a_run_mid_scoring(tmp_path / "run"), tmp_path / "c"
    assert run_script(SCRIPT, env, "save", str(run), str(carried)).returncode == 0
    (run / "scores-test-multi-reworded.json").unlink()
    assert run_script(SCRIPT, env, "save", str(run), str(carried)).returncode == 0
    assert not (carried / "evals" / "scores-test-multi-reworded.json").exists()
    assert sorted(p.name for p in carried.iterdir()) == ["evals", "sft"]  # no .part, no .old


def test_nothing_to_carry_is_a_one_line_error(env, tmp_path):
    (tmp_path / "empty").mkdir()
    for args in (("save", str(tmp_path / "empty"), str(tmp_path / "c")),
                 ("restore", str(tmp_path / "c"), str(tmp_path / "run")),
                 ("load", "a", "b")):  # fmt: skip
        done = run_script(SCRIPT, env, *args)
        assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1, args
    assert not calls(env)  # neither packed nor unpacked
