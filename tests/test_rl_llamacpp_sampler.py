"""RL rollouts on llama.cpp: each policy version written once as a GGUF file and decoded as the
learner's merged weights decode it; a new version replaces the old engine; a start whose base is
no GGUF file is refused before anything runs; and a run of two steps trains on llama.cpp's
samples with the sampler's logprobs the learner's own (its approx_kl near 0)."""

from __future__ import annotations

import json

import pytest
import torch

from tiny_lm import make_tiny_lm
from wideseek.llm.engine import GenerateRequest, SamplingParams
from wideseek.llm.gguf_export import GGUFExportError
from wideseek.train.rl.config import Guards, RLConfig, RolloutEngine
from wideseek.train.rl.llamacpp_sampler import LlamaCppSampler
from wideseek.train.rl.logprobs import sequence_logprobs
from wideseek.train.rl.rewards import CompositeReward, Term
from wideseek.train.rl.trainer import RLTrainer
from wideseek.train.trainable import LoraSettings, load_trainable
from wideseek.types import Message

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")

QUESTION = [Message(role="user", content="Name three rivers of France.")]
SAMPLED = SamplingParams(temperature=1.0, max_tokens=32, seed=3)


@pytest.fixture(scope="module")
def trainable():
    torch.manual_seed(0)  # the adapter's A
    return load_trainable("default", lora=LoraSettings(r=4, target_modules=["q_proj", "v_proj"]),
                          dtype="fp32")  # fmt: skip


def nudge(policy, seed: int) -> None:
    """An update's stand-in: every LoRA B moved (peft starts B at 0, the adapter a no-op)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, weight in policy.named_parameters():
            if "lora_B" in name:
                weight.add_(torch.randn(weight.shape, generator=generator) * 0.02)


def learner_logprobs(policy, prompt: list[int], completion) -> torch.Tensor:
    """The learner's logprobs of the sampled tokens (the update's definition)."""
    ids = torch.tensor([prompt + completion.token_ids])
    with torch.no_grad():
        logprobs, _ = sequence_logprobs(policy, ids, SAMPLED.temperature)
    return logprobs[0, len(prompt) - 1 :]


async def test_each_version_is_written_once_and_samples_with_the_learner_s_logprobs(
    trainable, tmp_path
):
    policy = trainable.model.eval()
    sampler = LlamaCppSampler(policy, trainable.resolved, trainable.tokenizer, tmp_path,
                              weights="f32", slots=2)  # fmt: skip
    prompt = sampler.engine("v0").renderer.render_prompt(QUESTION, None)

    async def gap(version: str, samples=None) -> tuple[float, list]:
        """Mean |sampler - learner| logprob over 4 sampled completions (`samples`: earlier
        ones, scored again under the current weights)."""
        if samples is None:
            engine = sampler.engine(version)
            requests = [GenerateRequest(prompt_token_ids=prompt, sampling=SAMPLED.model_copy(
                update={"seed": seed})) for seed in range(4)]  # fmt: skip
            samples = [await engine.generate(request) for request in requests]
        diff = [torch.tensor(s.logprobs) - learner_logprobs(policy, prompt, s) for s in samples]
        return float(torch.cat(diff).abs().mean()), samples

    # B = 0: the merge changes nothing and the file is the base's tensors as shipped, so this
    # is llama.cpp's own rounding (its Q8 activations), ~0.06 nats a token at temperature 1
    rounding, _ = await gap("v0")
    nudge(policy, 1)
    merged, first = await gap("v1")
    assert merged < rounding + 0.02  # the export adds (almost) nothing to it
    engine, written = sampler.engine("v1"), sampler.path.stat().st_mtime_ns
    assert sampler.engine("v1") is engine and sampler.path.stat().st_mtime_ns == written

    nudge(policy, 2)
    stale, _ = await gap("v2", first)  # v1's sample against v2's weights: the nudge shows
    fresh, _ = await gap("v2")
    assert stale > 2 * rounding, (stale, rounding)
    assert fresh < rounding + 0.02  # so v2's file holds v2's weights
    assert sampler.engine("v2") is not engine and engine._ctx is None  # the old one freed
    assert [p.name for p in sampler.path.parent.iterdir()] == ["policy.gguf"]
    sampler.close()


def test_a_start_whose_base_is_no_gguf_file_is_refused_before_anything_runs(tmp_path):
    cfg = RLConfig(model=str(make_tiny_lm(tmp_path / "lm")), out_dir=str(tmp_path / "run"),
                   dtype="fp32", lora=LoraSettings(r=4), suites=["deep"],
                   rollout_engine=RolloutEngine(kind="llama.cpp"))  # fmt: skip
    with pytest.raises(GGUFExportError, match="is not a GGUF file") as info:
        RLTrainer(cfg, show_progress=False)
    assert "\n" not in str(info.value)


def test_rollouts_ahead_is_refused_with_the_in_process_engine():
    with pytest.raises(ValueError, match="rollouts_ahead"):
        RLConfig(model="default", out_dir="x", max_staleness=1, rollouts_ahead=True,
                 rollout_engine=RolloutEngine(kind="llama.cpp"))  # fmt: skip


def test_a_run_trains_on_llama_cpp_samples_with_the_learner_s_logprobs(tmp_path, capsys):
    agent = {"context_length": 3072, "max_response_tokens": 24, "lead_turns": 2,
             "subagent_turns": 2, "max_subagents": 2, "turn_hints": False}  # fmt: skip
    cfg = RLConfig(
        model="default", out_dir=str(tmp_path), dtype="fp32",
        lora=LoraSettings(r=4, target_modules=["q_proj", "v_proj"], top_layers=2),
        suites=["deep"], mode="single", tasks_per_step=1, group_size=2, steps=2, agent=agent,
        lr=1e-3, guards=Guards(min_reward=None, max_flat_groups=None), save_every=2,
        credit="all", rollout_engine=RolloutEngine(kind="llama.cpp", weights="f16"),
    )  # fmt: skip
    # the first trial of each group rewarded: never a flat group, so every step updates
    first = CompositeReward(outcome=Term("outcome", lambda task, t: float(t.trial == 0)))
    trainer = RLTrainer(cfg, show_progress=False, reward=first)
    assert trainer.llama is not None and trainer.llama.options["context_length"] == 3072
    trainer.train()
    trainer.close()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:
        assert row["trained_tokens"] > 0
        # old logprobs (llama.cpp's, f16) against the learner's fp32 before its update
        assert row["approx_kl"] < 0.02 and row["ratio_mean"] == pytest.approx(1.0, abs=0.05)
    loaded = [line for line in capsys.readouterr().err.splitlines() if "llama.cpp sampler" in line]
    assert len(loaded) == 2  # version 0 for step 1, then the updated weights for step 2
    step2 = json.loads((tmp_path / "rollouts" / "step-2" / "run.json").read_text())
    assert step2["extra"]["policy_version"] == 1
    assert (tmp_path / "final").is_dir()
