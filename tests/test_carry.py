"""A checkpoint packed in one run directory and unpacked in another resumes the same training:
exactly when packed in fp32, to bf16's rounding when packed small (train/carry.py)."""

import json

import pytest
import torch
from safetensors.torch import load_file

from test_sft_lora import config, examples, model_dir  # noqa: F401 (fixtures)
from wideseek.cli import main
from wideseek.train.carry import PACKED, pack, unpack
from wideseek.train.checkpoints import CheckpointError, checkpoints
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
def runs(model_dir, examples, tmp_path_factory):  # noqa: F811
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
    dtype,  # noqa: F811
):
    whole, stopped = runs
    newest = checkpoints(stopped)[-1]
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
    rows = (stopped / "metrics.jsonl").read_text().splitlines()
    carried = (there / "metrics.jsonl").read_text().splitlines()
    assert carried and all(json.loads(r).get("step", 0) <= step for r in carried)
    assert carried == [r for r in rows if json.loads(r).get("step", 0) <= step][: len(carried)]

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


def test_nothing_to_pack_or_unpack_is_one_line(tmp_path, capsys):
    with pytest.raises(CheckpointError, match="no complete checkpoint to pack"):
        pack(tmp_path, tmp_path / "packed")
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
