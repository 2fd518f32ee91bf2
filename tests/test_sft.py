"""The SFT loop on a tiny model: it learns, it resumes exactly, it says what is wrong."""

import asyncio
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from scripted_engine import ScriptedEngine
from test_orchestrator import TASK, responder, tools_for
from tiny_lm import make_tiny_lm
from wideseek.agents.orchestrator import Orchestrator
from wideseek.train.checkpoints import CheckpointError, checkpoints
from wideseek.train.copy_probe import teacher_forced_metrics
from wideseek.train.heap import RestartToFreeMemory
from wideseek.train.sft import SFTConfig, _data_changes, make_batches, train_sft
from wideseek.train.sft_data import trajectory_examples


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_lm(tmp_path_factory.mktemp("lm"), max_positions=2048)


@pytest.fixture(scope="module")
def examples(model_dir):
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    traj = asyncio.run(Orchestrator(ScriptedEngine(responder=responder), tools_for).run(TASK))
    return list(trajectory_examples(tokenizer, [traj], max_length=2048))


def config(model_dir, out, **kw):
    base = dict(model=str(model_dir), out_dir=str(out), lr=3e-3, warmup_steps=2, log_every=1)
    return SFTConfig(**{**base, **kw})


def probe(model_dir, examples):
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    return teacher_forced_metrics(model, AutoTokenizer.from_pretrained(model_dir), examples)


def metric_rows(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_short_run_lowers_the_loss_and_writes_metrics(model_dir, examples, tmp_path):
    before = probe(model_dir, examples)
    final = train_sft(config(model_dir, tmp_path, epochs=15), examples, show_progress=False)
    after = probe(final, examples)
    assert after["loss"] < 0.7 * before["loss"]
    assert after["token_acc"] > before["token_acc"]
    rows = metric_rows(tmp_path)
    assert [r["step"] for r in rows] == list(range(1, 16))  # one batch per epoch here
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert rows[-1]["tokens_seen"] == 15 * sum(len(e.input_ids) for e in examples)
    assert (final / "model.safetensors").exists() and (final / "tokenizer.json").exists()
    assert final.stat().st_mode & 0o055  # readable by others, unlike a bare mkdtemp


def test_resume_from_a_mid_run_checkpoint_matches_an_uninterrupted_run(
    model_dir, examples, tmp_path
):
    # one example per micro-batch, 2 micro-batches per step, 3 epochs -> 5 steps (9 batches)
    kw = dict(epochs=3, batch_tokens=1300, grad_accum=2, save_every=2, eval_every=3)
    assert len(make_batches(examples, 1300, 0)) == 3
    whole = train_sft(config(model_dir, tmp_path / "a", **kw), examples, show_progress=False)

    def crash_at_3(model_dir: str, step: int) -> dict:
        if step == 3:
            raise KeyboardInterrupt  # killed right after checkpoint-3 was written
        return {"ok": 1.0}

    interrupted = config(model_dir, tmp_path / "b", **kw)
    with pytest.raises(KeyboardInterrupt):
        train_sft(interrupted, examples, evaluate=crash_at_3, show_progress=False)
    assert [p.name for p in checkpoints(tmp_path / "b")] == ["checkpoint-2", "checkpoint-3"]
    resumed = train_sft(interrupted, examples, evaluate=crash_at_3, show_progress=False)

    a, b = load_file(whole / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rows_a = [r for r in metric_rows(tmp_path / "a") if "step" in r]
    rows_b = metric_rows(tmp_path / "b")
    assert [r["step"] for r in rows_b if "step" in r] == [1, 2, 3, 4, 5]  # no duplicates
    assert [r["loss"] for r in rows_a] == [r["loss"] for r in rows_b if "step" in r]
    # evaluated at step 3 (the crash, not logged) and at the end, on the final model
    assert [r["eval"]["step"] for r in rows_b if "eval" in r] == [5]
    assert len(checkpoints(tmp_path / "b")) == 2  # keep_checkpoints


def test_a_run_over_its_memory_limit_stops_at_a_checkpoint_and_resumes_exactly(
    model_dir, examples, tmp_path
):
    kw = dict(epochs=3, batch_tokens=1300, grad_accum=2, save_every=3)  # 5 steps
    whole = train_sft(config(model_dir, tmp_path / "a", **kw), examples, show_progress=False)
    limited = config(model_dir, tmp_path / "b", restart_above_gb=1e-6, **kw)  # always passed
    for step in (2, 4):  # after each process's second step, off save_every's schedule
        with pytest.raises(RestartToFreeMemory, match=f"step {step} saved; peak resident memory"):
            train_sft(limited, examples, show_progress=False)
        assert checkpoints(tmp_path / "b")[-1].name == f"checkpoint-{step}"
    resumed = train_sft(limited, examples, show_progress=False)  # the last step: no restart

    a, b = load_file(whole / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rows = metric_rows(tmp_path / "b")
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5] and rows[0]["peak_resident_gb"] > 0
    assert len({r["started"] for r in rows}) == 3  # each process's rows name it (the card's time)
    assert "restart_above_gb" not in (resumed / "README.md").read_text()  # not a recipe setting


def test_corrupt_or_foreign_checkpoint_is_a_clear_error(model_dir, examples, tmp_path):
    cfg = config(model_dir, tmp_path, epochs=2, save_every=1)
    train_sft(cfg, examples, show_progress=False)
    metrics = (tmp_path / "metrics.jsonl").read_text()
    train_sft(cfg, examples, show_progress=False)  # finished: returns at once
    assert (tmp_path / "metrics.jsonl").read_text() == metrics
    shutil.rmtree(tmp_path / "final")  # as if killed before the end
    latest = checkpoints(tmp_path)[-1]
    (latest / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="checkpoint-2: cannot resume"):
        train_sft(cfg, examples, show_progress=False)
    with pytest.raises(CheckpointError, match="other data or batching"):
        train_sft(cfg, examples[:2], show_progress=False)
    # the same examples in another order: as many, as many tokens, yet other batches
    assert [e.input_ids for e in examples[::-1]] != [e.input_ids for e in examples]
    with pytest.raises(CheckpointError, match="other data or batching"):
        train_sft(cfg, examples[::-1], show_progress=False)
    (latest / "trainer_state.json").write_text("{")
    with pytest.raises(CheckpointError, match=r"unreadable trainer_state\.json"):
        train_sft(cfg, examples, show_progress=False)
    # an incomplete checkpoint (no trainer_state.json) is ignored: resume from the one before
    (latest / "trainer_state.json").unlink()
    assert [p.name for p in checkpoints(tmp_path)] == ["checkpoint-1"]
    assert train_sft(cfg, examples, show_progress=False).exists()


def test_other_data_continue_resumes_on_remade_examples_and_records_it(
    model_dir, examples, tmp_path
):
    # demonstrations remade on another machine came out different: by default a refusal;
    # with other_data=continue the run goes on from its step, on the new examples, and says so
    kw = dict(epochs=4, batch_tokens=1300, grad_accum=1, save_every=1)  # 1 example a step
    first = config(model_dir, tmp_path, eval_every=1, **kw)
    with pytest.raises(KeyboardInterrupt):
        train_sft(first, examples, evaluate=stop_at(2), show_progress=False)
    remade = examples[::-1]  # as many examples, another order: other batches
    with pytest.raises(CheckpointError, match="other data or batching"):
        train_sft(first, remade, show_progress=False)
    with pytest.raises(CheckpointError, match="other data or batching"):  # batching must hold
        train_sft(config(model_dir, tmp_path, other_data="continue", **{**kw, "seed": 1}),
                  remade, show_progress=False)  # fmt: skip
    carry_on = config(model_dir, tmp_path, other_data="continue", **kw)
    final = train_sft(carry_on, remade, show_progress=False)
    state = json.loads((final / "trainer_state.json").read_text())
    steps = [r["step"] for r in metric_rows(tmp_path) if "step" in r]
    assert state["step"] == 12 and steps == list(range(1, 13))
    (change,) = state["data_changes"]
    assert change["step"] == 2 and change["from"]["order"] != state["data"]["order"]
    assert "examples remade after step 2" in (final / "README.md").read_text()
    assert "other_data" not in (final / "README.md").read_text()  # not a recipe setting
    assert train_sft(carry_on, remade, show_progress=False) == final  # finished: at once


def test_a_checkpoint_signed_before_the_order_records_no_data_change():
    now = {"examples": 3, "tokens": 30, "order": "abc", "seed": 0}
    old = {"step": 4, "data": {"examples": 3, "tokens": 30, "seed": 0}}  # no "order" yet
    assert _data_changes(old, now) == []
    assert _data_changes({**old, "data": {**now, "order": "xyz"}}, now)[0]["step"] == 4


def stop_at(stop: int):
    def evaluate(model_dir: str, step: int) -> dict:
        if step == stop:
            raise KeyboardInterrupt  # killed right after that step's checkpoint
        return {}

    return evaluate


def test_config_rejects_unknown_and_bad_fields():
    with pytest.raises(ValueError, match="extra"):
        SFTConfig(model="m", out_dir="o", learning_rate=1e-3)
    with pytest.raises(ValueError, match="mixed_precision"):
        SFTConfig(model="m", out_dir="o", mixed_precision="fp8")


def test_no_examples_is_an_error(model_dir, tmp_path):
    with pytest.raises(ValueError, match="no training examples"):
        train_sft(config(model_dir, tmp_path), [], show_progress=False)


def test_a_checkpoint_signed_before_the_order_was_still_resumes(model_dir, examples, tmp_path):
    cfg = config(model_dir, tmp_path, epochs=2, save_every=1)
    train_sft(cfg, examples, show_progress=False)
    shutil.rmtree(tmp_path / "final")
    state_file = checkpoints(tmp_path)[-1] / "trainer_state.json"
    state = json.loads(state_file.read_text())
    assert len(state["data"].pop("order")) == 16
    state_file.write_text(json.dumps(state))  # as an earlier version wrote it
    assert train_sft(cfg, examples, show_progress=False).exists()
