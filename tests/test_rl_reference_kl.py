"""The optional KL anchor to the start model (`kl_coef`): its estimator, its pull in an update."""

from __future__ import annotations

import math

import pytest
import torch

from test_rl_trainer import config, on_policy
from tiny_lm import make_tiny_lm
from wideseek.train.rl.loss import reference_kl
from wideseek.train.rl.metrics_row import metric_keys
from wideseek.train.rl.trainer import RLTrainer


def test_k3_is_zero_at_the_reference_and_its_mean_over_policy_samples_is_the_kl():
    same = torch.tensor([[-1.0, -2.0]])
    assert reference_kl(same, same).abs().max() == 0
    # one token: ref - new = log 2 -> 2 - log 2 - 1
    assert float(reference_kl(torch.tensor([0.0]), torch.tensor([math.log(2)]))) == (
        pytest.approx(1 - math.log(2))
    )
    # tokens drawn from the policy p: the mean of k3 against q estimates KL(p || q)
    p = torch.tensor([0.5, 0.4, 0.1])
    q = torch.tensor([0.1, 0.2, 0.7])  # q / p <= 7: below the clamp
    draws = torch.multinomial(
        p, 200_000, replacement=True, generator=torch.Generator().manual_seed(0)
    )
    estimate = float(reference_kl(p.log()[draws], q.log()[draws]).mean())
    assert estimate == pytest.approx(float((p * (p / q).log()).sum()), rel=0.02)
    assert estimate != pytest.approx(float((q * (q / p).log()).sum()), rel=0.1)  # not KL(q || p)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_lm(tmp_path_factory.mktemp("lm"), max_positions=4096)


def test_kl_coef_pulls_a_moved_policy_back_towards_the_start(model_dir, tmp_path):
    ids, mask = list(range(10, 40)), [False] * 20 + [True] * 10
    cfg = config(model_dir, tmp_path, kl_coef=1.0, clip={"dual_clip": None})
    trainer = RLTrainer(cfg, show_progress=False)
    assert "kl_ref" in metric_keys(cfg, []) and "kl_ref" not in metric_keys(
        config(model_dir, tmp_path), []
    )
    row = trainer.update([([on_policy(trainer, ids, mask)], 1.0)])
    assert row["kl_ref"] == pytest.approx(0, abs=1e-6)  # the first update starts at the start
    moved = on_policy(trainer, ids, mask)
    # advantage 0: the policy loss gives nothing; only the anchor moves the weights
    row = trainer.update([([moved], 0.0)])
    assert row["kl_ref"] > 0 and row["grad_norm"] > 0
    after = trainer.update([([on_policy(trainer, ids, mask)], 0.0)])
    assert after["kl_ref"] < row["kl_ref"]
    trainer.config = trainer.config.model_copy(update={"kl_coef": 0.0})
    assert trainer.update([([on_policy(trainer, ids, mask)], 0.0)])["grad_norm"] == 0
