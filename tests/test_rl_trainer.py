"""The RL loop on a tiny random model: an update moves the policy the advantage's way, steps run
through the real runtime, a run resumes, and the collapse guard trips on a run with no signal."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from tiny_lm import make_tiny_lm
from wideseek.llm.batched_decode import token_logprobs
from wideseek.train.rl.rewards import RewardShaping, rollout_reward
from wideseek.train.rl.samples import AgentSample
from wideseek.train.rl.trainer import CollapseError, Guards, RLConfig, RLTrainer, step_tasks
from wideseek.train.trainable import LoraSettings
from wideseek.types import AgentRun, Task, Trajectory, Turn, Usage

AGENT = {
    "context_length": 4096, "max_response_tokens": 8, "lead_turns": 2, "subagent_turns": 2,
    "max_subagents": 2, "turn_hints": False,
}  # fmt: skip


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_lm(tmp_path_factory.mktemp("lm"), max_positions=4096)


def config(model_dir, out, **kw) -> RLConfig:
    base = dict(
        model=str(model_dir), out_dir=str(out), dtype="fp32", lora=LoraSettings(r=4),
        suites=["deep"], tasks_per_step=1, group_size=2, steps=2, agent=AGENT, lr=1e-2,
        guards=Guards(min_reward=None, max_flat_groups=None), save_every=1,
    )  # fmt: skip
    return RLConfig(**{**base, **kw})


def logprob_of(trainer: RLTrainer, sample: AgentSample) -> float:
    ids = torch.tensor([sample.input_ids])
    with torch.no_grad():
        logits = trainer.model(input_ids=ids).logits[:, :-1]
        new = token_logprobs(logits, ids[:, 1:], 1.0)[0]
    mask = torch.tensor(sample.response_mask[1:])
    return float(new[mask].sum())


def on_policy(trainer: RLTrainer, ids: list[int], mask: list[bool]) -> AgentSample:
    """A sample whose sampling logprobs are the policy's own, as a fresh rollout's are."""
    with torch.no_grad():
        logits = trainer.model(input_ids=torch.tensor([ids])).logits[:, :-1]
        old = token_logprobs(logits, torch.tensor([ids[1:]]), 1.0)[0].tolist()
    return AgentSample(ids, mask, [0.0, *old], agent_id=0, role="lead")


def test_an_update_moves_the_policy_the_advantage_s_way(model_dir, tmp_path):
    trainer = RLTrainer(config(model_dir, tmp_path), show_progress=False)
    mask = [False] * 20 + [True] * 10
    good = on_policy(trainer, list(range(10, 40)), mask)
    before = logprob_of(trainer, good)
    stats = trainer.update([([good], 1.0)])
    assert stats["ratio_mean"] == pytest.approx(1.0, abs=1e-4)  # on-policy: old == new
    assert stats["clip_frac"] == 0 and stats["entropy"] > 0
    assert logprob_of(trainer, good) > before
    bad = on_policy(trainer, list(range(70, 100)), mask)
    before = logprob_of(trainer, bad)
    trainer.update([([bad], -1.0)])
    assert logprob_of(trainer, bad) < before


def test_steps_run_through_the_runtime_resume_and_log_every_figure(model_dir, tmp_path):
    cfg = config(model_dir, tmp_path, steps=1)
    RLTrainer(cfg, show_progress=False).train()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1]
    for key in ("reward", "outcome", "format_ok", "flat_groups", "subagents_per_rollout",
                "response_tokens", "rollout_s", "update_s"):  # fmt: skip
        assert key in rows[0]
    # the rollouts of step 1 are on disk, stamped with the policy version that sampled them
    run = json.loads((tmp_path / "rollouts" / "step-1" / "run.json").read_text())
    assert run["extra"]["policy_version"] == 1 and run["trials"] == 2
    # a longer run in the same out_dir resumes after checkpoint-1
    final = RLTrainer(config(model_dir, tmp_path, steps=2), show_progress=False).train()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert (final / "adapter_config.json").exists()
    assert "trained by `wideseek train rl`" in (final / "README.md").read_text()


def test_a_run_with_no_signal_trips_the_guard_and_rolls_back(model_dir, tmp_path):
    # a random model earns nothing: every group is flat, from the first step
    guards = Guards(min_reward=None, max_flat_groups=1.0, patience=2)
    trainer = RLTrainer(config(model_dir, tmp_path, steps=5, guards=guards), show_progress=False)
    with pytest.raises(CollapseError, match=r"step 2: 100% of groups all-equal .* checkpoint-1"):
        trainer.train()
    assert (tmp_path / "final" / "adapter_config.json").exists()


def test_the_policy_engine_reads_the_model_s_recommendations_from_a_spec(
    model_dir, tmp_path, monkeypatch
):
    """With `model: default` the spec names no directory; the engine gets the resolved model."""
    from wideseek.llm import resolved_model

    greedy = tmp_path / "model"
    shutil.copytree(model_dir, greedy)
    (greedy / "wideseek.json").write_text(json.dumps({"limits": {"lead_turns": 3}}))
    path = greedy / "generation_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "do_sample": False}))
    real = resolved_model.resolve_base_model

    def resolve(spec, cache_dir=None):  # "default" without converting the real base
        return greedy if spec == "default" else real(spec, cache_dir)

    monkeypatch.setattr(resolved_model, "resolve_base_model", resolve)
    trainer = RLTrainer(config("default", tmp_path / "run"), show_progress=False)
    assert trainer.engine.model_dir == greedy
    defaults = trainer.engine.generation_defaults()
    assert defaults["temperature"] == 0.0 and defaults["lead_turns"] == 3


def test_step_tasks_cycle_a_seeded_order():
    pool = [Task(id=f"t{i}", question="q") for i in range(5)]
    seen = [t.id for step in range(5) for t in step_tasks(pool, step, 2, seed=3)]
    assert sorted(seen[:5]) == [f"t{i}" for i in range(5)]  # each once per pass
    assert seen == [t.id for step in range(5) for t in step_tasks(pool, step, 2, seed=3)]


def rollout(answer: str, completion_tokens: int = 10, lead_ok: bool = True) -> Trajectory:
    turn = Turn(index=0, n_context_messages=2, usage=Usage(completion_tokens=completion_tokens))
    lead = AgentRun(agent_id=0, role="lead", prompt="q", turns=[turn],
                    failures=[] if lead_ok else ["turn_limit"])  # fmt: skip
    return Trajectory(task=Task(id="q1", question="q", kind="qa"), mode="multi",
                      agents=[lead], final_answer=answer)  # fmt: skip


def test_rewards_pay_outcome_and_bonuses_only_for_a_finished_well_formed_answer():
    shaping = RewardShaping()
    assert rollout_reward(rollout("\\boxed{Lima}"), {"em": 1.0}, shaping).total == 1.1
    assert rollout_reward(rollout("Lima"), {"em": 1.0}, shaping).total == 0.0  # malformed
    assert rollout_reward(rollout("\\boxed{Lima}", lead_ok=False), {"em": 1.0}, shaping).total == 0
    long = rollout_reward(rollout("\\boxed{x}", completion_tokens=4000), {"em": 0.0}, shaping)
    assert long.total == pytest.approx(0.1 - 0.05) and long.length_penalty == pytest.approx(0.05)


def test_train_rl_runs_from_a_yaml_file_and_says_why_it_stopped(model_dir, tmp_path, capsys):
    import yaml

    from test_suite_runner import run_cli

    run = config(model_dir, tmp_path / "run", steps=3,
                 guards=Guards(min_reward=0.0, max_flat_groups=None, patience=1))  # fmt: skip
    path = tmp_path / "rl.yaml"
    path.write_text(yaml.safe_dump(run.model_dump(mode="json")))
    # a random model earns reward 0 at once: the guard stops the run before any good checkpoint
    assert run_cli(["train", "rl", "--config", str(path), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "step 1: mean reward 0.000 <= 0.0 for 1 steps; no good checkpoint" in err
    assert err.count("error:") == 1 and err.strip().splitlines()[-1].startswith("error: step 1")
    assert run_cli(["train", "rl", "--config", str(path), "lr=-1"]) != 0  # a bad value: refused
