"""The GRPO pieces against the published definitions: advantages, dual-level weights, clipping."""

import math
import statistics

import pytest
import torch

from wideseek.train.rl.advantages import group_advantages, is_flat
from wideseek.train.rl.loss import ClipSettings, policy_loss, token_weights
from wideseek.train.rl.samples import agent_sample
from wideseek.types import AgentRun, Turn


def test_group_advantages_are_z_scores_with_the_unbiased_std():
    rewards = [1.0, 0.0, 0.5, 0.5]
    mean, std = 0.5, statistics.stdev(rewards)  # sample std (n - 1), as torch's default
    assert group_advantages(rewards) == pytest.approx([(r - mean) / (std + 1e-6) for r in rewards])
    assert std == pytest.approx(math.sqrt(0.5 / 3))
    assert group_advantages([0.3, 0.3, 0.3]) == [0.0, 0.0, 0.0] and is_flat([0.3, 0.3, 0.3])
    assert group_advantages([1.0]) == [0.0]


def test_every_rollout_and_every_agent_in_it_weighs_the_same():
    # rollout 0: a lead that wrote 100 tokens and ten subagents of 10 each; rollout 1: a lead
    # of 50 and one subagent of 400; a subagent that generated nothing is not an agent here
    generated = [[100] + [10] * 10, [50, 400, 0]]
    weights = token_weights(generated)
    per_agent = [
        [w * n for w, n in zip(ws, ns, strict=True)]
        for ws, ns in zip(weights, generated, strict=True)
    ]
    assert [sum(r) for r in per_agent] == pytest.approx([0.5, 0.5])  # 1 / B each
    assert per_agent[0] == pytest.approx([0.5 / 11] * 11)  # 1 / (B * A_i) per agent
    assert per_agent[1][:2] == pytest.approx([0.25, 0.25]) and per_agent[1][2] == 0
    assert weights[0][0] == pytest.approx(1 / (2 * 11 * 100))  # 1 / (B * A_i * N_ia)


def test_b_is_the_step_s_rollouts_not_only_those_given():
    # two of eight rollouts train (the others: flat groups): each still weighs 1/8, not 1/2
    weights = token_weights([[10], [5, 20]], rollouts=8)
    assert weights == [
        [pytest.approx(1 / (8 * 10))],
        [pytest.approx(1 / (8 * 2 * 5)), pytest.approx(1 / (8 * 2 * 20))],
    ]
    assert token_weights([[10]]) == [[pytest.approx(1 / 10)]]  # B defaults to those given
    with pytest.raises(ValueError, match="fewer"):
        token_weights([[1], [1]], rollouts=1)


def loss_of(ratio: float, advantage: float, clip: ClipSettings) -> float:
    new = torch.tensor([[math.log(ratio)]])
    loss, _ = policy_loss(new, torch.zeros(1, 1), torch.tensor([advantage]),
                          torch.ones(1, 1), torch.ones(1, 1), clip)  # fmt: skip
    return float(loss)


@pytest.mark.parametrize(
    ("ratio", "advantage", "expected"),
    [
        (1.0, 1.0, -1.0),  # on-policy: -A
        (1.5, 1.0, -1.28),  # positive A: the ratio is clipped at 1 + eps_high
        (1.2, 1.0, -1.2),  # inside the asymmetric band: not clipped
        (0.5, 1.0, -0.5),  # a fall is never clipped from below for positive A (min of both)
        (0.5, -1.0, 0.8),  # negative A: clipped at 1 - eps_low
        (30.0, -1.0, 10.0),  # negative A, huge ratio: dual-clip caps the loss at c * |A|
        (3.0, -1.0, 3.0),  # below the cap: the plain surrogate
    ],
)
def test_clipped_surrogate_matches_the_published_definition(ratio, advantage, expected):
    assert loss_of(ratio, advantage, ClipSettings()) == pytest.approx(expected, rel=1e-5)


def test_without_dual_clip_a_negative_advantage_loss_is_unbounded():
    assert loss_of(30.0, -1.0, ClipSettings(dual_clip=None)) == pytest.approx(30.0, rel=1e-5)


def test_loss_weights_the_masked_tokens_and_reports_its_statistics():
    new = torch.log(torch.tensor([[1.0, 1.5, 2.0, 1.0]]))
    old = torch.zeros(1, 4)
    mask = torch.tensor([[1, 1, 1, 0]])
    weights = torch.full((1, 4), 1 / 3)
    new.requires_grad_(True)
    loss, stats = policy_loss(new, old, torch.tensor([1.0]), weights, mask)
    assert float(loss.detach()) == pytest.approx(-(1.0 + 1.28 + 1.28) / 3, rel=1e-5)
    assert stats["clip_frac"] == pytest.approx(2 / 3) and stats["dual_clip_frac"] == 0
    assert stats["ratio_mean"] == pytest.approx(1.5)
    assert stats["approx_kl"] > 0
    loss.backward()
    assert new.grad is not None and float(new.grad[0, 0]) == pytest.approx(-1 / 3)
    assert float(new.grad[0, 1]) == 0 and float(new.grad[0, 3]) == 0  # clipped; masked


def test_an_agent_sample_joins_the_stored_ids_with_a_multi_span_mask():
    turns = [
        Turn(index=0, n_context_messages=2, added_prompt_token_ids=[1, 2, 3],
             response_token_ids=[7, 8], response_logprobs=[-0.1, -0.2]),
        Turn(index=1, n_context_messages=4, added_prompt_token_ids=[4, 5],
             response_token_ids=[9], response_logprobs=[-0.3]),
    ]  # fmt: skip
    agent = AgentRun(agent_id=3, role="subagent", prompt="p", turns=turns)
    sample = agent_sample(agent)
    assert sample is not None
    assert sample.input_ids == [1, 2, 3, 7, 8, 4, 5, 9]
    assert [*sample.input_ids[:5], 4, 5] == agent.prompt_token_ids(1)  # what turn 1 saw
    assert sample.response_mask == [False] * 3 + [True] * 2 + [False] * 2 + [True]
    assert sample.old_logprobs == [0.0] * 3 + [-0.1, -0.2, 0.0, 0.0, -0.3]
    assert sample.n_generated == 3
    # only turn 1 trained: turn 0 stays as context, unmasked
    only = agent_sample(agent, turns={1})
    assert only is not None and only.input_ids == sample.input_ids
    assert only.response_mask == [False] * 7 + [True]
    assert only.old_logprobs == [0.0] * 7 + [-0.3]
    # only turn 0 trained: the sequence ends with its response
    first = agent_sample(agent, turns={0})
    assert first is not None and first.input_ids == [1, 2, 3, 7, 8] and first.n_generated == 2
    # a turn without logprobs (an engine error's) ends the sequence: what came before trains
    turns[1].response_logprobs = None
    cut = agent_sample(agent)
    assert cut is not None and cut.input_ids == [1, 2, 3, 7, 8] and cut.n_generated == 2
    assert agent_sample(agent, turns={1}) is None
    for turn in turns:  # a chat-path engine: no ids, no sample
        turn.added_prompt_token_ids = None
    assert agent_sample(agent) is None


def ratios_loss(ratios: list[float], mask: list[int], early_stop: float | None):
    new = torch.log(torch.tensor([ratios])).requires_grad_(True)
    loss, stats = policy_loss(new, torch.zeros(1, len(ratios)), torch.tensor([-1.0]),
                              torch.ones(1, len(ratios)), torch.tensor([mask]),
                              ClipSettings(dual_clip=None), early_stop)  # fmt: skip
    loss.backward()
    return float(loss.detach()), new.grad, stats


def test_a_sample_whose_mean_ratio_passes_the_early_stop_ratio_is_dropped():
    # mean ratio over the masked tokens 5.33 > 5: the loss and its gradient are 0, counted
    loss, grad, stats = ratios_loss([6.0, 6.0, 4.0, 100.0], [1, 1, 1, 0], early_stop=5.0)
    assert loss == 0 and float(grad.abs().sum()) == 0
    assert stats["early_stopped"] == 1 and stats["ratio_mean"] == pytest.approx(16 / 3)
    # mean exactly 5 (the masked 100 does not count): kept, as RLinf keeps ratio <= threshold
    loss, grad, stats = ratios_loss([6.0, 6.0, 3.0, 100.0], [1, 1, 1, 0], early_stop=5.0)
    assert loss == pytest.approx(15.0, rel=1e-5) and float(grad.abs().sum()) > 0
    assert stats["early_stopped"] == 0
    # off: the same large ratios train
    loss, grad, stats = ratios_loss([6.0, 6.0, 4.0, 100.0], [1, 1, 1, 0], early_stop=None)
    assert loss == pytest.approx(16.0, rel=1e-5) and stats["early_stopped"] == 0
