"""LoRA in the SFT loop: it learns, it saves a small loadable adapter, it resumes exactly."""

import asyncio
import json
import re
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from scripted_engine import ScriptedEngine
from test_orchestrator import TASK, responder, tools_for
from tiny_lm import make_tiny_lm
from wideseek.agents.orchestrator import Orchestrator
from wideseek.llm.engine import GenerateRequest, SamplingParams
from wideseek.llm.local import LocalEngine
from wideseek.llm.model_dir import (
    ModelInfo,
    RecommendedLimits,
    is_adapter_dir,
    read_model_info,
    write_model_info,
)
from wideseek.llm.model_loading import load_causal_lm, load_tokenizer
from wideseek.llm.resolved_model import resolve_model
from wideseek.train.checkpoints import CheckpointError, checkpoints
from wideseek.train.sft import SFTConfig, train_sft
from wideseek.train.sft_data import trajectory_examples
from wideseek.train.trainable import LoraSettings, load_trainable


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_lm(tmp_path_factory.mktemp("lm"), max_positions=2048)


@pytest.fixture(scope="module")
def examples(model_dir):
    tokenizer = load_tokenizer(model_dir)
    traj = asyncio.run(Orchestrator(ScriptedEngine(responder=responder), tools_for).run(TASK))
    return list(trajectory_examples(tokenizer, [traj], max_length=2048))


def config(model, out, **kw) -> SFTConfig:
    base = dict(
        model=str(model), out_dir=str(out), lr=1e-2, warmup_steps=2, log_every=1,
        lora=LoraSettings(r=8, alpha=16), dtype="fp32",
    )  # fmt: skip
    return SFTConfig(**{**base, **kw})


def mean_loss(model_dir, examples) -> float:
    model = load_causal_lm(model_dir).eval()
    with torch.no_grad():
        losses = [
            float(
                model(input_ids=torch.tensor([e.input_ids]), labels=torch.tensor([e.labels])).loss
            )
            for e in examples
        ]
    return sum(losses) / len(losses)


def test_a_lora_run_learns_and_ships_a_small_adapter_over_the_base(model_dir, examples, tmp_path):
    before = mean_loss(model_dir, examples)
    final = train_sft(config(model_dir, tmp_path, epochs=15), examples, show_progress=False)
    assert is_adapter_dir(final)
    assert not (final / "model.safetensors").exists()
    assert (final / "tokenizer.json").exists()
    recorded = json.loads((final / "adapter_config.json").read_text())
    assert recorded["base_model_name_or_path"] == str(model_dir)  # a plain dir: kept as is
    card = (final / "README.md").read_text()  # the project's card, not peft's boilerplate
    assert card.startswith("# wideseek sft model") and "LoRA adapter (rank 8, alpha 16" in card
    assert "- recipe: lr 0.01," in card and "- trained: steps " in card and "last loss" in card
    weights = load_file(final / "adapter_model.safetensors")
    assert weights and all("lora_" in name for name in weights)  # the adapter only
    # a random tiny base has little for a low-rank update to steer: 6.03 -> 5.45 measured
    assert mean_loss(final, examples) < 0.93 * before
    # the base itself is untouched; the engine runs base + adapter, merged
    assert mean_loss(model_dir, examples) == pytest.approx(before)
    engine = LocalEngine(final, dtype="fp32")
    prompt = examples[0].input_ids[:20]
    out = asyncio.run(
        engine.generate(
            GenerateRequest(prompt_token_ids=prompt, sampling=SamplingParams(max_tokens=5))
        )
    )
    assert len(out.token_ids) >= 1


def test_a_lora_run_resumes_exactly_and_continues_from_an_adapter(model_dir, examples, tmp_path):
    kw = dict(epochs=3, batch_tokens=1300, grad_accum=2, save_every=2, eval_every=3)
    whole = train_sft(config(model_dir, tmp_path / "a", **kw), examples, show_progress=False)

    def crash_at_3(model: str, step: int) -> dict:
        if step == 3:
            raise KeyboardInterrupt
        return {}

    interrupted = config(model_dir, tmp_path / "b", **kw)
    with pytest.raises(KeyboardInterrupt):
        train_sft(interrupted, examples, evaluate=crash_at_3, show_progress=False)
    latest = checkpoints(tmp_path / "b")[-1]
    assert is_adapter_dir(latest / "model")
    saved = load_file(latest / "model.safetensors")  # the trained weights only, not the base
    assert saved and all("lora_" in name for name in saved)
    resumed = train_sft(interrupted, examples, evaluate=crash_at_3, show_progress=False)
    a = load_file(whole / "adapter_model.safetensors")
    b = load_file(resumed / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    # a checkpoint without one of the run's trained weights is refused, not loaded in part
    shutil.rmtree(tmp_path / "b" / "final")
    newest = checkpoints(tmp_path / "b")[-1] / "model.safetensors"
    saved = load_file(newest)
    dropped = sorted(saved)[0]
    save_file({k: v for k, v in saved.items() if k != dropped}, newest)
    refused = rf"lacks 1 of this run's trained weights \(first: {re.escape(dropped)}\)"
    with pytest.raises(CheckpointError, match=refused):
        train_sft(interrupted, examples, show_progress=False)

    # a later phase (or RL) starts from the adapter: it trains the same adapter further, and
    # keeps the limits and decoding the start recommends (a run from the base has none)
    assert not (whole / "wideseek.json").exists()
    limits = RecommendedLimits(lead_turns=4, max_response_tokens=256, lead_response_tokens=768)
    write_model_info(whole, ModelInfo(name="start", limits=limits))
    (whole / "generation_config.json").write_text(json.dumps({"do_sample": False}))
    more = train_sft(config(whole, tmp_path / "c", epochs=2, lora=None), examples,
                     show_progress=False)  # fmt: skip
    c = load_file(more / "adapter_model.safetensors")
    assert c.keys() == a.keys() and any(not torch.equal(a[k], c[k]) for k in a)
    recorded = json.loads((more / "adapter_config.json").read_text())
    assert recorded["base_model_name_or_path"] == str(model_dir)
    kept = resolve_model(more)
    assert kept.limits == limits and kept.generation.temperature == 0.0
    assert read_model_info(more).name is None  # the start's name is not its own


def test_top_layers_adapts_only_the_top_of_the_stack(model_dir):
    trainable = load_trainable(model_dir, lora=LoraSettings(r=4, top_layers=1), dtype="fp32")
    names = [n for n, p in trainable.model.named_parameters() if p.requires_grad]
    assert names and all(".layers.1." in n for n in names)  # 2 layers: only the top one
    kinds = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in names}
    assert {"q_proj", "k_proj", "v_proj", "o_proj", "down_proj"} <= kinds
    full = load_trainable(model_dir)
    assert not full.is_lora and full.dtype == torch.float32
    assert full.trainable_parameters() == sum(p.numel() for p in full.model.parameters())


def test_a_resume_over_a_base_that_changed_at_its_path_is_refused(examples, tmp_path):
    # checkpoints leave the frozen base out: a resume loads it from the base's directory again
    base = make_tiny_lm(tmp_path / "base", max_positions=2048)
    run = config(base, tmp_path / "run", epochs=2, batch_tokens=1300, save_every=1, eval_every=1)

    def crash_at_1(model: str, step: int) -> dict:
        if step == 1:
            raise KeyboardInterrupt
        return {}

    with pytest.raises(KeyboardInterrupt):
        train_sft(run, examples, evaluate=crash_at_1, show_progress=False)
    weights = base / "model.safetensors"
    original = load_file(weights)
    name = sorted(original)[0]
    save_file({**original, name: original[name] + 1e-3}, weights, metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="trained over other frozen base weights"):
        train_sft(run, examples, show_progress=False)
    save_file(original, weights, metadata={"format": "pt"})  # the same base again: it resumes
    assert (train_sft(run, examples, show_progress=False) / "adapter_model.safetensors").exists()
