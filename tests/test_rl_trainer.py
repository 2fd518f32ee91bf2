"""The RL loop on a tiny random model: an update moves the policy the advantage's way, steps run
through the real runtime, a run resumes, and the collapse guard trips on a run with no signal."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import torch

from tiny_lm import make_tiny_lm
from wideseek.runtime.world_run import EVAL_LIMITS
from wideseek.train.checkpoints import CheckpointError
from wideseek.train.dev_eval import DevEvalSettings
from wideseek.train.rl.config import Guards, RLConfig, policy_after
from wideseek.train.rl.logprobs import sequence_logprobs
from wideseek.train.rl.rewards import CompositeReward, Term, build_reward
from wideseek.train.rl.samples import AgentSample
from wideseek.train.rl.trainer import CollapseError, RLTrainer, metric_keys, step_tasks
from wideseek.train.trainable import LoraSettings
from wideseek.types import Task

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
    with torch.no_grad():
        new, _ = sequence_logprobs(trainer.model, torch.tensor([sample.input_ids]), 1.0)
    return float(new[0][torch.tensor(sample.response_mask[1:])].sum())


def on_policy(trainer: RLTrainer, ids: list[int], mask: list[bool]) -> AgentSample:
    """A sample whose sampling logprobs are the policy's own, as a fresh rollout's are."""
    with torch.no_grad():
        old = sequence_logprobs(trainer.model, torch.tensor([ids]), 1.0)[0][0].tolist()
    return AgentSample(ids, mask, [0.0, *old], agent_id=0, role="lead")


def test_masked_logprobs_project_only_the_trained_positions_with_the_same_values_and_grads(
    model_dir, tmp_path
):
    trainer = RLTrainer(config(model_dir, tmp_path), show_progress=False)
    model = trainer.model
    ids = torch.tensor([list(range(10, 40))])
    mask = torch.tensor([[False] * 12 + [True] * 5 + [False] * 6 + [True] * 6])  # two turns
    lora = [p for p in model.parameters() if p.requires_grad]

    def grads(logprobs: torch.Tensor) -> list[torch.Tensor]:
        weighted = (logprobs * mask * torch.linspace(-1, 1, mask.shape[1])).sum()
        return torch.autograd.grad(weighted, lora)

    full, _ = sequence_logprobs(model, ids, 0.7)
    kept, entropy = sequence_logprobs(model, ids, 0.7, mask)
    assert torch.allclose(kept[mask], full[mask], atol=1e-5)
    assert not kept[~mask].any()  # nothing computed where nothing is trained
    for a, b in zip(grads(full), grads(kept), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1][mask[0]].float() / 0.7
        logp = torch.log_softmax(logits, -1)
    assert entropy == pytest.approx(float(-(logp.exp() * logp).sum(-1).mean()), rel=1e-4)


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


def rows_of(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_steps_run_through_the_runtime_resume_and_log_every_figure(model_dir, tmp_path):
    cfg = config(model_dir, tmp_path, steps=1)
    RLTrainer(cfg, show_progress=False).train()
    rows = rows_of(tmp_path)
    assert [r["step"] for r in rows] == [1]
    keys = metric_keys(cfg, build_reward(cfg.shaping).names())
    assert list(rows[0]) == keys
    assert rows[0]["started"] <= time.time()  # which process logged it (cards order by it)
    for key in ("reward_mean", "reward_std", "reward_deep", "outcome", "format_ok",
                "flat_groups", "rollouts", "rollouts_kept", "rollouts_dropped",
                "subagents_per_rollout", "response_tokens", "rollout_s", "update_s",
                "fail_turn_limit"):  # fmt: skip
        assert rows[0][key] is not None, key
    assert rows[0]["rollouts"] == 2 and rows[0]["policy_version"] == 0
    assert "reward_wide" not in rows[0]  # a key per configured suite
    # the rollouts of step 1 are on disk, stamped with the policy version that sampled them
    run = json.loads((tmp_path / "rollouts" / "step-1" / "run.json").read_text())
    assert run["extra"]["policy_version"] == 0 and run["trials"] == 2
    # a longer run in the same out_dir resumes after checkpoint-1
    final = RLTrainer(config(model_dir, tmp_path, steps=2), show_progress=False).train()
    rows = rows_of(tmp_path)
    assert [r["step"] for r in rows] == [1, 2] and all(list(r) == keys for r in rows)
    assert (final / "adapter_config.json").exists()
    assert "trained by `wideseek train rl`" in (final / "README.md").read_text()


def test_a_checkpoint_that_cannot_be_resumed_is_one_line(model_dir, tmp_path):
    cfg = config(model_dir, tmp_path, steps=1)
    final = RLTrainer(cfg, show_progress=False).train()
    assert json.loads((final / "trainer_state.json").read_text())["step"] == 1
    latest = tmp_path / "checkpoint-1"
    weights = next(latest.glob("*.safetensors"))
    weights.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match=r"checkpoint-1: cannot resume \(.*delete it"):
        RLTrainer(cfg, show_progress=False).resume()
    (latest / "trainer_state.json").write_text("{")
    with pytest.raises(CheckpointError, match=r"checkpoint-1: unreadable trainer_state\.json"):
        RLTrainer(cfg, show_progress=False).resume()


def test_a_run_with_no_signal_from_the_start_has_no_good_checkpoint(model_dir, tmp_path):
    # a random model earns nothing: every group is flat from step 1, so checkpoint-1, saved
    # while the guard was tripping, is not a good one to roll back to
    guards = Guards(min_reward=None, max_flat_groups=1.0, patience=2)
    trainer = RLTrainer(config(model_dir, tmp_path, steps=5, guards=guards), show_progress=False)
    with pytest.raises(CollapseError, match=r"step 2: 100% of groups all-equal .* no good"):
        trainer.train()
    state = json.loads((tmp_path / "checkpoint-1" / "trainer_state.json").read_text())
    assert state["good"] is False and state["last_good"] is None
    assert not (tmp_path / "final").exists()


def scripted_reward(trainer: RLTrainer, signal_until: int) -> None:
    """Trial 0 of each group earns 1 up to step `signal_until`, then every rollout earns 0."""

    def signal(task, trajectory) -> float:
        return float(trainer.step < signal_until and trajectory.trial == 0)

    trainer.reward = CompositeReward(outcome=Term("outcome", signal))


def test_a_rerun_after_a_collapse_resumes_from_the_last_good_checkpoint(
    model_dir, tmp_path, capsys
):
    guards = Guards(min_reward=None, max_flat_groups=1.0, patience=2)
    trainer = RLTrainer(config(model_dir, tmp_path, steps=6, guards=guards), show_progress=False)
    scripted_reward(trainer, signal_until=2)  # steps 1-2 learn; 3 and 4 are flat: stop at 4
    with pytest.raises(CollapseError, match=r"step 4: .* rolled back to checkpoint-2"):
        trainer.train()
    state = json.loads((tmp_path / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["good"] is False and state["last_good"] == 2  # saved while tripping
    assert [r["step"] for r in rows_of(tmp_path)] == [1, 2, 3, 4]
    good = (tmp_path / "checkpoint-2" / "model" / "adapter_model.safetensors").read_bytes()
    assert (tmp_path / "final" / "adapter_model.safetensors").read_bytes() == good
    capsys.readouterr()
    # run again with another lr: it resumes from checkpoint-2 (not the collapsed 3), drops the
    # collapsed run's rows and checkpoints, reuses step 3's rollouts (sampled by checkpoint-2
    # under the same settings) and discards step 4's (sampled by the collapsed weights)
    again = config(model_dir, tmp_path, steps=4, lr=5e-3,
                   guards=Guards(min_reward=None, max_flat_groups=None))  # fmt: skip
    rerun = RLTrainer(again, show_progress=False)
    rerun.resume()
    assert rerun.step == 2 and not (tmp_path / "checkpoint-3").exists()
    assert [r["step"] for r in rows_of(tmp_path)] == [1, 2]
    err = capsys.readouterr().err
    assert "collapsed at step 4" in err and "resuming from checkpoint-2" in err
    rerun.train()
    err = capsys.readouterr().err
    assert "step-3 was made by other" not in err
    assert err.count("discarded") == 1 and "rollouts/step-4 was made by other" in err
    assert [r["step"] for r in rows_of(tmp_path)] == [1, 2, 3, 4]
    assert not (tmp_path / "collapse.json").exists()


def test_a_rollout_folder_of_other_settings_is_not_reused(model_dir, tmp_path, capsys):
    RLTrainer(config(model_dir, tmp_path, steps=1), show_progress=False).train()
    before = (tmp_path / "rollouts" / "step-1" / "trajectories.jsonl").read_text()
    shutil.rmtree(tmp_path / "checkpoint-1")
    # the same step again, with a sampling setting changed: the folder is discarded
    RLTrainer(config(model_dir, tmp_path, steps=1, temperature=0.5), show_progress=False).train()
    assert "rollouts/step-1 was made by other weights or settings" in capsys.readouterr().err
    after = (tmp_path / "rollouts" / "step-1" / "trajectories.jsonl").read_text()
    assert after != before and len(after.splitlines()) == 2


def test_policy_ids_chain_the_history_of_updates(model_dir, tmp_path):
    cfg, other = config(model_dir, tmp_path), config(model_dir, tmp_path, lr=1e-3)
    assert policy_after("p", cfg) == policy_after("p", cfg)
    assert policy_after("p", cfg) != policy_after("p", other)
    # the same last update after another one before it: other weights
    assert policy_after(policy_after("p", cfg), cfg) != policy_after(policy_after("p", other), cfg)
    # settings that do not touch the weights keep the id
    assert policy_after("p", cfg) == policy_after("p", cfg.model_copy(update={"steps": 99}))


def test_a_step_weighs_its_tokens_over_every_rollout(model_dir, tmp_path):
    cfg = config(model_dir, tmp_path, steps=1, tasks_per_step=2)
    trainer = RLTrainer(cfg, show_progress=False)
    first = step_tasks(trainer.pool, 0, 2, cfg.seed)[0].id

    def signal(task, trajectory) -> float:  # the second group is flat
        return float(task.id == first and trajectory.trial == 0)

    trainer.reward = CompositeReward(outcome=Term("outcome", signal))
    calls = []
    update = trainer.update
    trainer.update = lambda pairs, rollouts=None: (
        calls.append((len(pairs), rollouts)) or update(pairs, rollouts)
    )
    row = trainer.run_step()
    assert calls == [(2, 4)]  # two rollouts trained, weighed over the step's four
    assert (row["rollouts"], row["rollouts_kept"], row["rollouts_dropped"]) == (4, 2, 2)
    assert row["flat_groups"] == 0.5 and row["trained_tokens"] > 0


def test_the_outcome_guard_averages_over_a_window(model_dir, tmp_path):
    guards = Guards(min_reward=None, max_flat_groups=None, min_outcome=0.1, outcome_window=3,
                    patience=1)  # fmt: skip
    trainer = RLTrainer(config(model_dir, tmp_path, guards=guards), show_progress=False)

    def row(outcome: float) -> dict:
        return {"reward_mean": 0.2, "flat_groups": 0.0, "subagents_per_rollout": 1.0,
                "outcome": outcome}  # fmt: skip

    # the shaping keeps the reward at 0.2; the outcome falls to 0: the window mean trips once it
    # is <= 0.1 (0.3 -> 0.15 -> 0.1)
    whys = [trainer.check_guards(row(o)) for o in (0.3, 0.0, 0.0, 0.0)]
    assert whys[:2] == [None, None]
    assert whys[2] == "mean outcome 0.100 over the last 3 steps <= 0.1 for 1 steps"


def test_the_entropy_and_malformed_call_guards(model_dir, tmp_path):
    guards = Guards(min_reward=None, max_flat_groups=None, max_entropy_rise=0.5,
                    max_malformed=0.5, patience=2)  # fmt: skip
    trainer = RLTrainer(config(model_dir, tmp_path, guards=guards), show_progress=False)

    def row(entropy: float | None, malformed: float = 0.0) -> dict:
        return {"reward_mean": 0.2, "flat_groups": 0.0, "subagents_per_rollout": 1.0,
                "outcome": 0.2, "entropy": entropy, "fail_malformed_call": malformed}  # fmt: skip

    # the start is the first step that trained tokens (None: nothing trained, no figure)
    whys = [trainer.check_guards(row(e)) for e in (None, 0.04, 0.058, 0.061, 0.062)]
    assert trainer.guards.start_entropy == 0.04
    assert whys[:4] == [None, None, None, None]  # +45%, then +53% once: patience 2
    assert whys[4] == "entropy 0.0620, +55% on the first step's 0.0400 for 2 steps"
    assert not trainer.guards.healthy()
    # a resumed run keeps the start it measured
    again = RLTrainer(config(model_dir, tmp_path / "again", guards=guards), show_progress=False)
    again.guards.restore(trainer.state(good=False))
    assert again.guards.start_entropy == 0.04
    assert again.check_guards(row(0.045, malformed=0.6)) is None
    assert again.check_guards(row(0.045, malformed=0.56)) == (
        "malformed calls per rollout 0.56 >= 0.5 for 2 steps"
    )


def test_rollouts_sample_untruncated_whatever_the_model_recommends(model_dir, tmp_path):
    nucleus = tmp_path / "model"
    shutil.copytree(model_dir, nucleus)
    path = nucleus / "generation_config.json"
    saved = json.loads(path.read_text())
    path.write_text(json.dumps({**saved, "do_sample": True, "top_p": 0.9, "top_k": 20}))
    trainer = RLTrainer(config(nucleus, tmp_path / "run", steps=1), show_progress=False)
    assert trainer.engine.generation_defaults()["top_p"] == 0.9  # what ask/eval would use
    seen: list[tuple] = []
    generate = trainer.engine.generate

    async def spy(request):
        seen.append((request.sampling.top_p, request.sampling.top_k))
        return await generate(request)

    trainer.engine.generate = spy
    trainer.train()
    assert seen and set(seen) == {(1.0, 0)}  # top_k 0: no cut, also on a vLLM/SGLang server
    run = json.loads((tmp_path / "run" / "rollouts" / "step-1" / "run.json").read_text())
    assert run["extra"]["config"]["agent"]["top_p"] == 1.0
    assert run["extra"]["config"]["agent"]["top_k"] == 0


def test_rollouts_play_under_the_limits_a_dev_evaluation_takes(tmp_path):
    # a run file that sets no limit, a model that recommends some: the model's, then the
    # evaluation limits (not AgentConfig's defaults: no response cap, the whole context)
    roomy = make_tiny_lm(tmp_path / "lm", max_positions=8192)
    limits = {"lead_turns": 2, "subagent_turns": 2, "max_response_tokens": 8}
    (roomy / "wideseek.json").write_text(json.dumps({"limits": limits}))
    agent = {"max_subagents": 2, "turn_hints": False}
    trainer = RLTrainer(config(roomy, tmp_path / "run", steps=1, agent=agent),
                        show_progress=False)  # fmt: skip
    trainer.train()
    run = json.loads((tmp_path / "run" / "rollouts" / "step-1" / "run.json").read_text())
    played = run["extra"]["config"]["agent"]
    assert {k: played[k] for k in limits} == limits
    assert played["context_length"] == EVAL_LIMITS.context_length


def test_dev_evaluation_during_rl_shares_the_row_schema(model_dir, tmp_path, capsys):
    dev = DevEvalSettings(wide_tasks=1, deep_tasks=1, concurrency=2,
                          agent={**AGENT, "temperature": 0.0, "seed": 0})  # fmt: skip
    cfg = config(model_dir, tmp_path, steps=3, eval_every=2, eval=dev)
    trainer = RLTrainer(cfg, show_progress=False)
    engine, seen = trainer.engine, set()
    generate = engine.generate

    async def spy(request):  # how the shared engine decodes each request
        seen.add((request.sampling.temperature, engine.batch_invariant,
                  engine.prefix_cache.max_tokens > 0))  # fmt: skip
        return await generate(request)

    engine.generate = spy
    trainer.train()
    # the seeded evaluation decodes each request alone, the rollouts stay batched and cached
    assert seen == {(0.0, True, False), (1.0, False, True)}
    assert not engine.batch_invariant and engine.prefix_cache.max_tokens > 0
    rows = rows_of(tmp_path)
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    assert len({tuple(r) for r in rows}) == 1  # every row: the same keys, in the same order
    evaluated = [r["step"] for r in rows if r["dev_deep_em"] is not None]
    assert evaluated == [0, 2, 3]  # the start, every 2 steps, the end
    assert rows[0]["reward_mean"] is None and rows[1]["eval_s"] is None
    assert rows[2]["dev_call_validity"] is not None and rows[2]["dev_wide_item_f1"] is not None
    assert (tmp_path / "dev-eval" / "step-2" / "deep" / "results.jsonl").exists()
    # the start model's evaluation again: kept under the same settings, redone under others
    capsys.readouterr()
    RLTrainer(cfg, show_progress=False).evaluate()
    assert "discarded" not in capsys.readouterr().err
    longer = dev.model_copy(update={"agent": {**dev.agent, "max_response_tokens": 4}})
    RLTrainer(cfg.model_copy(update={"eval": longer}), show_progress=False).evaluate()
    assert "dev-eval/step-0 was made by other weights or settings" in capsys.readouterr().err


def test_a_run_takes_another_run_s_start_evaluation_when_it_fits(model_dir, tmp_path, capsys):
    dev = DevEvalSettings(wide_tasks=1, deep_tasks=1, concurrency=2,
                          agent={**AGENT, "temperature": 0.0, "seed": 0})  # fmt: skip
    first = config(model_dir, tmp_path / "first", steps=0, eval_every=1, eval=dev, seed=0)
    RLTrainer(first, show_progress=False).train()
    other_seed = first.model_copy(
        update={"out_dir": str(tmp_path / "second"), "seed": 1, "eval_start_in": first.out_dir}
    )
    trainer = RLTrainer(other_seed, show_progress=False)
    asked: list = []
    trainer.engine.generate = lambda request: asked.append(request)  # must not be called
    capsys.readouterr()
    trainer.train()
    assert not asked and "dev evaluation taken from" in capsys.readouterr().err
    [row_a], [row_b] = rows_of(tmp_path / "first"), rows_of(tmp_path / "second")
    figures = [k for k in row_a if k.startswith("dev_")]
    assert figures and all(row_a[k] == row_b[k] for k in figures)
    # other eval settings: not taken, evaluated here
    longer = dev.model_copy(update={"agent": {**dev.agent, "max_response_tokens": 4}})
    other = other_seed.model_copy(update={"out_dir": str(tmp_path / "third"), "eval": longer})
    RLTrainer(other, show_progress=False).train()
    assert "does not fit this run; evaluating" in capsys.readouterr().err
    assert rows_of(tmp_path / "third")[0]["dev_deep_em"] is not None
    # kept without its trajectories (as results/ keeps scores): evaluated here, not a crash
    (tmp_path / "first" / "dev-eval" / "step-0" / "wide" / "trajectories.jsonl").unlink()
    fourth = other_seed.model_copy(update={"out_dir": str(tmp_path / "fourth")})
    RLTrainer(fourth, show_progress=False).train()
    assert "kept without its trajectories" in capsys.readouterr().err
    assert rows_of(tmp_path / "fourth")[0]["dev_wide_item_f1"] == row_a["dev_wide_item_f1"]


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


def shipped_run_file(name: str) -> RLConfig:
    from wideseek.config import read_yaml_tree, validate_tree

    path = Path(__file__).parent.parent / "configs" / name
    return validate_tree(RLConfig, read_yaml_tree(path, []), path)


@pytest.mark.parametrize(
    "name", ["rl-cpu.yaml", "rl-published.yaml", "rl-remote.yaml", "rl-demo-cpu.yaml"]
)
def test_the_shipped_run_files_load(name):
    run = shipped_run_file(name)
    assert run.credit == "published" and run.normalise_over == "step"


def test_the_demo_takes_its_limits_from_the_start_model():
    """Only the single agent's turns are written (no model card has them): every other limit,
    in rollouts and dev evaluations, is the start model's recommendation."""
    run = shipped_run_file("rl-demo-cpu.yaml")
    assert run.agent.model_fields_set == {"single_turns"}
    assert set(run.eval.agent) == {"temperature", "seed", "single_turns"}


def test_the_demo_guards_would_have_stopped_the_second_arm_before_its_last_step():
    """The second measured arm's own metrics, replayed through the demo config's guards."""
    import yaml

    from wideseek.train.rl.collapse import CollapseGuards

    root = Path(__file__).resolve().parents[1]
    guards = Guards(**yaml.safe_load((root / "configs/rl-demo-cpu.yaml").read_text())["guards"])
    metrics = root / "results/rl-demo/replaced-model/multi-s1/metrics.jsonl"
    rows = [json.loads(line) for line in metrics.open()]
    watch = CollapseGuards(guards.outcome_window)
    verdicts, good = {}, []
    for row in rows[1:]:  # row 0: the dev evaluation before training
        verdicts[row["step"]] = watch.check(row, guards, "multi")
        if watch.healthy():
            good.append(row["step"])
    assert [s for s, why in verdicts.items() if why] == [6]
    assert verdicts[6].startswith("entropy 0.0763, +133% on the first step's 0.0327")
    assert good[-1] == 3
