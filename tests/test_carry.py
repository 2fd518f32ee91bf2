"""A checkpoint packed in one run directory and unpacked in another resumes the same training:
exactly when packed in fp32, to bf16's rounding when packed small (train/carry.py)."""

# ruff: noqa: F811 (the fixtures imported from test_sft_lora are parameters here)
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from test_sft_lora import config, examples, model_dir  # noqa: F401 (fixtures)
from wideseek.cli import main
from wideseek.train.carry import PACKED, pack, unpack, version_drift
from wideseek.train.checkpoints import CheckpointError, checkpoints, row_step
from wideseek.train.sft import train_sft

KW = dict(epochs=3, batch_tokens=1300, grad_accum=2, save_every=2, eval_every=3)


def crash_at_3(model: str, step: int) -> dict:
    if step == 3:
        raise KeyboardInterrupt
    return {}


def _size(path):
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and f.name != PACKED)


def _distance(a, b):
    return sum(float((a[k].float() - b[k].float()).norm()) for k in a)


@pytest.fixture(scope="module")
def runs(model_dir, examples, tmp_path_factory):
    """An uninterrupted run, and one stopped after its step-3 checkpoint."""
    root = tmp_path_factory.mktemp("carry")
    whole = train_sft(config(model_dir, root / "whole", **KW), examples, show_progress=False)
    with pytest.raises(KeyboardInterrupt):
        train_sft(config(model_dir, root / "stopped", **KW), examples, evaluate=crash_at_3,
                  show_progress=False)  # fmt: skip
    return whole, root / "stopped"


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_a_packed_checkpoint_resumes_the_run_in_another_directory(
    runs,
    model_dir,
    examples,
    tmp_path,
    dtype,
):
    whole = runs[0]
    # the run went on past its checkpoint before it stopped: those rows are not carried
    stopped = tmp_path / "stopped"
    shutil.copytree(runs[1], stopped)
    newest = checkpoints(stopped)[-1]
    rows = (stopped / "metrics.jsonl").read_text().splitlines()
    later = [json.dumps({"step": 4, "loss": 9.0}), json.dumps({"eval": {"step": 4}})]
    (stopped / "metrics.jsonl").write_text("\n".join([*rows, *later]) + "\n")
    step = pack(stopped, tmp_path / "packed", dtype)
    assert step == int(newest.name.removeprefix("checkpoint-")) == 3
    packed = json.loads((tmp_path / "packed" / PACKED).read_text())
    cast = packed["cast"]
    weights, moments = cast["model.safetensors"], cast["optimizer.bin"]
    if dtype == "bf16":  # the trained weights and both moments, each recorded as fp32
        assert weights and set(weights.values()) == {"float32"}
        assert any(k.endswith("/exp_avg") for k in moments)
        assert any(k.endswith("/exp_avg_sq") for k in moments)
        assert not any(k.endswith("/step") for k in moments)  # scalars stay exact
        unpacked_size = _size(newest) - _size(newest / "model")
        assert _size(tmp_path / "packed") < 0.7 * unpacked_size
    else:
        assert weights == {} and moments == {}
    assert not (tmp_path / "packed" / f"checkpoint-{step}" / "model").exists()

    # another machine: a run directory with nothing in it
    there = tmp_path / "there"
    written = unpack(tmp_path / "packed", there)
    assert written == there / f"checkpoint-{step}"
    restored = load_file(written / "model.safetensors")
    assert {str(t.dtype) for t in restored.values()} == {"torch.float32"}
    assert unpack(tmp_path / "packed", there) is None  # as new as the packed one: left alone
    carried = (there / "metrics.jsonl").read_text().splitlines()
    assert carried == [r for r in rows if row_step(json.loads(r)) <= step]
    assert any(row_step(json.loads(r)) == step for r in carried)

    resumed = train_sft(config(model_dir, there, **KW), examples, show_progress=False)
    a = load_file(whole / "adapter_model.safetensors")
    b = load_file(resumed / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    if dtype == "fp32":
        assert all(torch.equal(a[k], b[k]) for k in a)
    else:  # rounded once at the hand-over, then trained on: far nearer the end than the start
        saved = load_file(newest / "model.safetensors")  # peft's names carry the adapter's
        start = {k.replace(".default.", "."): v for k, v in saved.items()}
        assert start.keys() == a.keys()
        assert _distance(a, b) < 0.05 * _distance(a, start)
        assert not all(torch.equal(a[k], b[k]) for k in a)


def cli(argv, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        main(argv)
    out = capsys.readouterr()
    return e.value.code, out.out + out.err


def test_a_run_with_an_older_checkpoint_takes_the_packed_one_and_its_curve(runs, tmp_path):
    _, stopped = runs
    pack(stopped, tmp_path / "packed")
    older = tmp_path / "older"  # this machine got as far as step 2 of the same run
    shutil.copytree(stopped, older)
    shutil.rmtree(checkpoints(older)[-1])
    assert checkpoints(older)[-1].name == "checkpoint-2"
    (older / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 1.0}) + "\n")
    assert unpack(tmp_path / "packed", older) == older / "checkpoint-3"
    assert [p.name for p in checkpoints(older)] == ["checkpoint-2", "checkpoint-3"]
    carried = (tmp_path / "packed" / "metrics.jsonl").read_text()
    assert (older / "metrics.jsonl").read_text() == carried
    assert version_drift(tmp_path / "packed") == []  # packed and unpacked here


def test_nothing_to_pack_or_unpack_is_one_line(runs, tmp_path, capsys):
    with pytest.raises(CheckpointError, match="no complete checkpoint to pack"):
        pack(tmp_path, tmp_path / "packed")
    _, stopped = runs
    with pytest.raises(CheckpointError, match="would replace the run"):
        pack(stopped, stopped.parent)  # dest is replaced whole
    # a file that came through git broken (a truncated blob, an LFS pointer)
    pack(stopped, tmp_path / "broken")
    [optimizer] = (tmp_path / "broken").glob("checkpoint-*/optimizer.bin")
    optimizer.write_text("version https://git-lfs.github.com/spec/v1\n")
    with pytest.raises(CheckpointError, match=r"optimizer.bin: unreadable \(UnpicklingError"):
        unpack(tmp_path / "broken", tmp_path / "run")
    packed = tmp_path / "broken" / PACKED
    packed.write_text(json.dumps({**json.loads(packed.read_text()), "cast": {"x": {"k": "no"}}}))
    with pytest.raises(CheckpointError, match="unknown dtype 'no'"):
        unpack(tmp_path / "broken", tmp_path / "run")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"not a packed checkpoint \(carried.json"):
        unpack(tmp_path / "empty", tmp_path / "run")
    code, said = cli(["train", "unpack", str(tmp_path / "empty"), str(tmp_path / "run")], capsys)
    assert code != 0 and "not a packed checkpoint" in said and "Traceback" not in said


def test_the_commands_pack_and_unpack(runs, tmp_path, capsys):
    _, stopped = runs
    code, said = cli(["train", "pack", str(stopped), str(tmp_path / "p")], capsys)
    assert code == 0 and f"packed step 3 of {stopped}" in said
    code, said = cli(["train", "unpack", str(tmp_path / "p"), str(tmp_path / "r")], capsys)
    assert code == 0 and "unpacked" in said
    assert checkpoints(tmp_path / "r")[-1].name == "checkpoint-3"
    code, said = cli(["train", "unpack", str(tmp_path / "p"), str(tmp_path / "r")], capsys)
    assert code == 0 and "nothing unpacked" in said
