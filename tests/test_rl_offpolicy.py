"""Off-policy RL: rollouts from older weights (`max_staleness`), the early-stop ratio in the
update, and rollouts on a vLLM / SGLang server that gets each new version pushed through its own
endpoints (a loopback fake speaking them, tests/fake_openai.py)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from fake_openai import FakeOpenAIServer
from test_rl_trainer import AGENT, config, on_policy, rows_of, scripted_reward
from tiny_lm import make_tiny_lm
from wideseek.llm.weight_push import WeightPushError
from wideseek.train.dev_eval import DevEvalSettings
from wideseek.train.rl.config import RLConfig, settings_of
from wideseek.train.rl.trainer import RLTrainer, step_tasks


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_lm(tmp_path_factory.mktemp("lm"), max_positions=4096)


def test_an_off_policy_sample_past_the_early_stop_ratio_adds_no_gradient(model_dir, tmp_path):
    # no dual clip: it would cap this ratio's loss, leaving no gradient to compare with
    trainer = RLTrainer(config(model_dir, tmp_path, clip={"dual_clip": None}), show_progress=False)
    mask = [False] * 20 + [True] * 10
    sample = on_policy(trainer, list(range(10, 40)), mask)
    # sampled by weights that gave these tokens e^-3 of the learner's probability: ratio ~20
    old = sample.old_logprobs
    sample.old_logprobs = [lp - 3.0 if m else lp for lp, m in zip(old, mask, strict=True)]
    row = trainer.update([([sample], -1.0)])
    assert row["early_stopped"] == 1 and row["ratio_mean"] > 5 and row["grad_norm"] == 0
    trainer.config = trainer.config.model_copy(update={"early_stop_ratio": None})
    row = trainer.update([([sample], -1.0)])
    assert row["early_stopped"] == 0 and row["grad_norm"] > 0


def test_new_settings_at_their_defaults_keep_the_ids_of_earlier_runs(model_dir, tmp_path):
    cfg = config(model_dir, tmp_path)
    dump = settings_of(cfg)
    assert not {"max_staleness", "early_stop_ratio", "rollout_engine", "kl_coef"} & set(dump)
    assert "max_staleness" in settings_of(cfg.model_copy(update={"max_staleness": 2}))


def sample_ahead(cfg: RLConfig, out, step: int) -> str:
    """Step `step`'s rollouts (1-based) sampled by the start weights (version 0), as an
    asynchronous sampler running ahead of the learner would leave them."""
    ahead = RLTrainer(cfg, show_progress=False)
    run_dir = out / "rollouts" / f"step-{step}"
    ahead._fresh_dir(run_dir, ahead.rollout_settings, 0)
    tasks = step_tasks(ahead.pool, step - 1, cfg.tasks_per_step, cfg.seed)
    asyncio.run(ahead.rollouts(tasks, run_dir, suite=f"rl-step-{step}"))
    return (run_dir / "trajectories.jsonl").read_text()


@pytest.mark.parametrize("staleness", [1, 0])
def test_rollouts_up_to_max_staleness_versions_old_are_trained_on(
    model_dir, tmp_path, capsys, staleness
):
    cfg = config(model_dir, tmp_path, steps=1, max_staleness=staleness)
    ahead = sample_ahead(cfg, tmp_path, step=2)  # by version 0, for step 2 (learner: version 1)
    RLTrainer(cfg, show_progress=False).train()
    capsys.readouterr()
    RLTrainer(cfg.model_copy(update={"steps": 2}), show_progress=False).train()
    err = capsys.readouterr().err
    now = (tmp_path / "rollouts" / "step-2" / "trajectories.jsonl").read_text()
    row = rows_of(tmp_path)[-1]
    if staleness:  # one version behind: reused, and the row says how stale
        assert "discarded" not in err and now == ahead and row["staleness"] == 1
    else:  # strictly on-policy: discarded and sampled again by version 1
        assert "rollouts/step-2 was made by other weights" in err
        assert now != ahead and row["staleness"] == 0
    state = json.loads((tmp_path / "checkpoint-2" / "trainer_state.json").read_text())
    assert sorted(state["history"]) == ["1", "2"][1 - staleness :]  # ids a folder may use


def completions_by_model(srv: FakeOpenAIServer) -> list[str]:
    return [r.body["model"] for r in srv.requests if r.path == "/v1/completions"]


def loads(srv: FakeOpenAIServer, path: str = "/v1/load_lora_adapter") -> list[str]:
    return [r.body["lora_name"] for r in srv.requests if r.path == path]


def test_a_vllm_server_gets_a_new_adapter_only_when_it_lags_more_than_max_staleness(
    model_dir, tmp_path
):
    with FakeOpenAIServer(lora_addressing="vllm") as srv:
        engine = {"kind": "vllm", "base_url": srv.base_url, "adapter": "pol"}
        cfg = config(model_dir, tmp_path, steps=3, max_staleness=1, rollout_engine=engine)
        trainer = RLTrainer(cfg, show_progress=False)
        assert trainer.engine is None  # the learner's model does not sample
        scripted_reward(trainer, signal_until=10)
        trainer.train()
        # version 0 before step 1; step 2 samples with it (1 behind); version 2 before step 3
        assert loads(srv) == ["pol-v0", "pol-v2"]
        assert loads(srv, "/v1/unload_lora_adapter") == ["pol-v0"]
        pushed = tmp_path / "pushed"
        assert srv.adapters == {"pol-v2": str(pushed / "v2")}
        assert (pushed / "v2" / "adapter_config.json").exists() and not (pushed / "v0").exists()
        assert [r["staleness"] for r in rows_of(tmp_path)] == [0, 1, 0]
        models = completions_by_model(srv)
        assert models and set(models) == {"pol-v0", "pol-v2"}  # requests name the adapter
        assert models.index("pol-v2") > len(models) - models[::-1].index("pol-v0") - 1
        assert srv.sampled_with == models  # and the server sampled with it
        run = json.loads((tmp_path / "rollouts" / "step-2" / "run.json").read_text())
        assert run["extra"]["policy_version"] == 0  # stamped with the weights that sampled


def test_a_refused_push_stops_with_the_trained_weights_checkpointed(model_dir, tmp_path):
    with FakeOpenAIServer() as srv:
        engine = {"kind": "vllm", "base_url": srv.base_url}
        cfg = config(model_dir, tmp_path, steps=2, save_every=5, rollout_engine=engine)
        trainer = RLTrainer(cfg, show_progress=False)
        scripted_reward(trainer, signal_until=10)
        update = trainer.update

        def then_refuse(*args, **kwargs):
            srv.refuse_weights = "LoRA rank 4 is greater than max_lora_rank 1"
            return update(*args, **kwargs)

        trainer.update = then_refuse
        with pytest.raises(WeightPushError) as e:
            trainer.train()
        text = str(e.value)
        assert "\n" not in text and "greater than max_lora_rank 1" in text
        assert "wideseek-policy-v1" in text and "checkpoint-1" in text
        state = json.loads((tmp_path / "checkpoint-1" / "trainer_state.json").read_text())
        assert state["step"] == 1  # saved although save_every is 5
        srv.refuse_weights = None
        rerun = RLTrainer(cfg, show_progress=False)
        scripted_reward(rerun, signal_until=10)
        rerun.train()  # resumes from step 1 and pushes its weights first
        assert loads(srv) == ["wideseek-policy-v0", "wideseek-policy-v1", "wideseek-policy-v1"]
        assert [r["step"] for r in rows_of(tmp_path)] == [1, 2]


def test_full_weights_reload_on_an_sglang_server(model_dir, tmp_path):
    with FakeOpenAIServer() as srv:
        engine = {"kind": "sglang", "base_url": srv.base_url}
        cfg = config(model_dir, tmp_path, steps=1, lora=None, rollout_engine=engine)
        RLTrainer(cfg, show_progress=False).train()
        assert srv.weights_path == str(tmp_path / "pushed" / "v0")
        assert (tmp_path / "pushed" / "v0" / "config.json").exists()
        assert set(completions_by_model(srv)) == {srv.model}  # the base, now reloaded


def test_vllm_without_lora_is_refused_when_the_file_loads(model_dir, tmp_path):
    engine = {"kind": "vllm", "base_url": "http://127.0.0.1:1"}
    with pytest.raises(ValueError, match="vLLM takes new weights only as a LoRA adapter"):
        config(model_dir, tmp_path, lora=None, rollout_engine=engine)
    with pytest.raises(ValueError, match=r"rollout_engine\.base_url"):
        config(model_dir, tmp_path, rollout_engine={"kind": "sglang"})


def test_sglang_rollouts_sample_with_each_newly_pushed_adapter(model_dir, tmp_path):
    """SGLang reads the adapter from the body's lora_path (the model stays the base's): every
    completion of step k names, and is sampled by, version k-1, and none the unloaded one."""
    with FakeOpenAIServer(lora_addressing="sglang") as srv:
        engine = {"kind": "sglang", "base_url": srv.base_url}
        cfg = config(model_dir, tmp_path, steps=2, rollout_engine=engine)
        trainer = RLTrainer(cfg, show_progress=False)
        scripted_reward(trainer, signal_until=10)
        trainer.train()
        assert loads(srv, "/load_lora_adapter") == ["wideseek-policy-v0", "wideseek-policy-v1"]
        assert loads(srv, "/unload_lora_adapter") == ["wideseek-policy-v0"]
        bodies = [r.body for r in srv.requests if r.path == "/v1/completions"]
        assert {b["model"] for b in bodies} == {srv.model}
        named = [b["lora_path"] for b in bodies]
        assert srv.sampled_with == named and set(named) == {
            "wideseek-policy-v0",
            "wideseek-policy-v1",
        }
        switch = named.index("wideseek-policy-v1")  # step 2's requests, all after step 1's
        assert set(named[:switch]) == {"wideseek-policy-v0"}
        assert set(named[switch:]) == {"wideseek-policy-v1"}


def test_a_refused_unload_is_logged_and_the_new_version_serves(tmp_path, caplog):
    from wideseek.train.rl.config import RolloutEngine
    from wideseek.train.rl.remote import RemotePolicy

    def write(path):
        (path / "adapter_config.json").write_text("{}")

    with FakeOpenAIServer() as srv:
        settings = RolloutEngine(kind="vllm", base_url=srv.base_url)
        remote = RemotePolicy(settings, tmp_path, tokenizer=None, context_length=64, lora=True)
        remote.push(0, write)
        srv.adapters.clear()  # the server lost version 0 (restarted): unloading it fails
        remote.push(1, write)
        assert remote.served == 1 and list(srv.adapters) == ["wideseek-policy-v1"]
        assert "cannot be found" in caplog.text and "wideseek-policy-v0 stays loaded" in caplog.text
        assert not (tmp_path / "pushed" / "v0").exists()


def test_rollouts_ahead_sample_the_next_step_on_the_server_during_the_update(model_dir, tmp_path):
    sent: list[float] = []  # when each completion request reached the server

    def answer(endpoint: str, body: dict) -> str:
        sent.append(time.monotonic())
        return "ok"

    with FakeOpenAIServer(lora_addressing="vllm", responder=answer, latency_s=0.02) as srv:
        engine = {"kind": "vllm", "base_url": srv.base_url, "adapter": "pol"}
        dev = DevEvalSettings(wide_tasks=1, deep_tasks=1, concurrency=2,
                              agent={**AGENT, "temperature": 0.0, "seed": 0})  # fmt: skip
        cfg = config(model_dir, tmp_path, steps=3, max_staleness=1, rollouts_ahead=True,
                     rollout_engine=engine, eval_every=2, eval=dev)  # fmt: skip
        trainer = RLTrainer(cfg, show_progress=False)
        scripted_reward(trainer, signal_until=10)
        update, updates = trainer.update, []

        def slow_update(*args, **kwargs):  # an update long enough to see what overlaps it
            started = time.monotonic()
            time.sleep(0.5)
            row = update(*args, **kwargs)
            updates.append((started, time.monotonic()))
            return row

        trainer.update = slow_update
        trainer.train()
        rows = [r for r in rows_of(tmp_path) if r["step"] > 0]
        # step 1 sampled by version 0 before its update; steps 2 and 3 during the one before,
        # by the weights before that update: one version old
        assert [r["staleness"] for r in rows] == [0, 1, 1]
        for started, ended in updates[:2]:  # steps 2 and 3 sampled while 1 and 2 updated
            assert any(started < t < ended for t in sent)
        # pushes between rollouts, never during: v1 for step 3's, v2 and v3 for the dev
        # evaluations after steps 2 and 3 (waiting for step 3's rollouts first); no request
        # ever named an adapter the server had unloaded (it would answer 404)
        assert loads(srv) == ["pol-v0", "pol-v1", "pol-v2", "pol-v3"]
        assert srv.sampled_with == completions_by_model(srv)
        run = json.loads((tmp_path / "rollouts" / "step-3" / "run.json").read_text())
        assert run["extra"]["policy_version"] == 1
        assert (tmp_path / "final" / "adapter_config.json").exists()


def test_rollouts_ahead_need_a_server_and_staleness(model_dir, tmp_path):
    with pytest.raises(ValueError, match=r"rollouts_ahead: .* needs a rollout_engine server"):
        config(model_dir, tmp_path, rollouts_ahead=True, max_staleness=1)
    engine = {"kind": "vllm", "base_url": "http://127.0.0.1:1"}
    with pytest.raises(ValueError, match="max_staleness >= 1"):
        config(model_dir, tmp_path, rollouts_ahead=True, rollout_engine=engine)
