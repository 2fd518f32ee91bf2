"""The RL engine's merged copy of a LoRA policy (train/rl/merged_sampler): the policy's logits
after each sync, its own base untouched, and a one-line error for a policy without adapters."""

from __future__ import annotations

import pytest
import torch

from tiny_lm import make_tiny_lm
from wideseek.train.rl.merged_sampler import MergedSampler
from wideseek.train.trainable import LoraSettings, load_trainable


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_lm(tmp_path_factory.mktemp("lm"), max_positions=512)


def logits(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_the_copy_gives_the_policys_logits_after_each_sync(model_dir):
    policy = load_trainable(str(model_dir), lora=LoraSettings(r=4), dtype="fp32").model.eval()
    with torch.no_grad():  # a trained adapter: B is zero at initialisation
        for name, p in policy.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    ids = torch.tensor([list(range(5, 40))])
    with policy.disable_adapter():
        base = logits(policy, ids)
    merged = MergedSampler(policy)
    assert merged.sync("v0") and not merged.sync("v0")  # the same version: nothing to do
    assert torch.allclose(logits(merged.model, ids), logits(policy, ids), atol=1e-5)
    with torch.no_grad():  # an update moves the adapter
        for name, p in policy.named_parameters():
            if "lora_A" in name:
                p.add_(0.1)
    assert not torch.allclose(logits(merged.model, ids), logits(policy, ids), atol=1e-3)
    assert merged.sync("v1")
    assert torch.allclose(logits(merged.model, ids), logits(policy, ids), atol=1e-5)
    with policy.disable_adapter():  # merging went into the copy, never into the policy's base
        assert torch.equal(logits(policy, ids), base)
    assert not any(p.requires_grad for p in merged.model.parameters())


def test_a_policy_without_adapters_is_refused(model_dir):
    full = load_trainable(str(model_dir), dtype="fp32").model
    with pytest.raises(ValueError, match="needs a LoRA policy"):
        MergedSampler(full)


@pytest.mark.parametrize("merged", [True, False])
def test_the_trainers_engine_samples_from_the_copy_unless_told_not_to(tmp_path, merged):
    from test_rl_trainer import config
    from wideseek.train.rl.trainer import RLTrainer

    lm = make_tiny_lm(tmp_path / "lm", max_positions=4096)
    cfg = config(lm, tmp_path / "run", rollout_engine={"merged": merged})
    trainer = RLTrainer(cfg, show_progress=False)
    policy = trainer.accelerator.unwrap_model(trainer.model)
    assert trainer.engine is not None
    assert trainer.engine.model is (trainer.merged.model if merged else policy)
    assert (trainer.merged is not None) == merged
