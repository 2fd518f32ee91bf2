"""The run layout every trainer shares (train/checkpoints.py): listing, pruning, resume errors,
metrics truncation and an atomic final/."""

import json
from types import SimpleNamespace

import pytest

from wideseek.train.checkpoints import (
    TRAINER_STATE,
    CheckpointError,
    checkpoint_dir,
    checkpoints,
    prune,
    read_state,
    restore,
    truncate_metrics,
    write_final,
    write_state,
)


def make_checkpoint(out, step, complete=True):
    path = checkpoint_dir(out, step)
    (path / "model").mkdir(parents=True)
    if complete:
        write_state(path, {"step": step})
    return path


def test_listing_is_numeric_and_skips_incomplete_and_foreign_folders(tmp_path):
    for step in (10, 2, 1):
        make_checkpoint(tmp_path, step)
    make_checkpoint(tmp_path, 11, complete=False)  # killed before its state was written
    (tmp_path / "checkpoint-x").mkdir()
    (tmp_path / "checkpoint-3.old").mkdir()
    assert [p.name for p in checkpoints(tmp_path)] == ["checkpoint-1", "checkpoint-2",
                                                      "checkpoint-10"]  # fmt: skip


def test_pruning_keeps_the_newest_and_the_protected(tmp_path):
    for step in range(1, 6):
        make_checkpoint(tmp_path, step)
    prune(tmp_path, keep=2, protect={2, None})
    assert [p.name for p in checkpoints(tmp_path)] == ["checkpoint-2", "checkpoint-4",
                                                      "checkpoint-5"]  # fmt: skip
    prune(tmp_path, keep=5)
    assert len(checkpoints(tmp_path)) == 3


def test_sft_trainer_state_of_earlier_runs_still_reads(tmp_path):
    # the format train_sft has always written (indent 2, step, tokens_seen, data signature)
    state = {"step": 40, "tokens_seen": 1310720, "data": {"examples": 5774, "tokens": 7810000,
             "batch_tokens": 32768, "grad_accum": 1, "seed": 0}}  # fmt: skip
    (tmp_path / TRAINER_STATE).write_text(json.dumps(state, indent=2))
    assert read_state(tmp_path, ("step", "tokens_seen")) == state


@pytest.mark.parametrize(
    ("content", "why"),
    [(None, "No such file"), ("{", "Expecting"), ('{"step": "x"}', "invalid literal"),
     ('{"tokens_seen": 1}', "KeyError: 'step'")],
)  # fmt: skip
def test_an_unreadable_state_is_one_line_naming_the_checkpoint(tmp_path, content, why):
    path = make_checkpoint(tmp_path, 3, complete=False)
    if content is not None:
        (path / TRAINER_STATE).write_text(content)
    with pytest.raises(CheckpointError) as e:
        read_state(path)
    message = str(e.value)
    assert message.startswith(f"{path}: unreadable trainer_state.json") and why in message
    assert "\n" not in message


class FakeAccelerator:
    def __init__(self, fail=None):
        self.fail, self.loaded = fail, []

    def register_load_state_pre_hook(self, hook):
        return SimpleNamespace(remove=lambda: None)

    def load_state(self, path, strict=True):
        if self.fail:
            raise self.fail
        self.loaded.append(path)


def test_restore_checks_the_state_before_loading_weights(tmp_path):
    path = make_checkpoint(tmp_path, 4)
    accelerator = FakeAccelerator()
    assert restore(accelerator, path) == {"step": 4}
    assert accelerator.loaded == [str(path)]

    def refuse(state):
        raise CheckpointError(f"{path}: saved for other data")

    accelerator = FakeAccelerator()
    with pytest.raises(CheckpointError, match="other data"):
        restore(accelerator, path, check=refuse)
    assert accelerator.loaded == []  # nothing loaded from a checkpoint of another run
    broken = FakeAccelerator(fail=RuntimeError("Error while deserializing header"))
    with pytest.raises(CheckpointError, match=r"checkpoint-4: cannot resume \(RuntimeError: "):
        restore(broken, path)


def test_metrics_after_the_checkpoint_and_a_torn_tail_are_dropped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rows = [{"step": 1}, {"eval": {"step": 2}}, {"step": 2}, {"step": 3}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 4, "lo')
    truncate_metrics(path, 2)
    assert [json.loads(line) for line in path.read_text().splitlines()] == rows[:3]
    truncate_metrics(tmp_path / "none.jsonl", 2)  # no metrics yet: nothing to do


def test_final_is_replaced_whole_or_not_at_all(tmp_path):
    def model(text):
        return lambda path: (path / "weights").write_text(text)

    final = write_final(tmp_path, model("one"), {"step": 1})
    assert (final / "weights").read_text() == "one" and read_state(final) == {"step": 1}

    def crash(path):
        (path / "weights").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_final(tmp_path, crash, {"step": 2})
    assert (final / "weights").read_text() == "one" and read_state(final) == {"step": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]  # no temporary left
    write_final(tmp_path, model("two"), {"step": 2})
    assert (final / "weights").read_text() == "two" and read_state(final) == {"step": 2}
