"""The one world entry (runtime/world_run.py): its limits, `eval world` and its aliases, and the
width sweep (`eval sweep`), on the world's oracle (no model: fast and exact)."""

from __future__ import annotations

import json
import sys

import pytest

from scripted_engine import ScriptedEngine
from wideseek.cli import main
from wideseek.config import AgentConfig
from wideseek.errors import UsageError
from wideseek.eval.runner import read_results
from wideseek.runtime import EVAL_LIMITS, EvalLimits, run_world, world_tasks
from wideseek.runtime.width_sweep import (
    SWEEP_JSON,
    SWEEP_MD,
    SWEEP_PNG,
    SweepRow,
    parse_widths,
    token_budget,
    write_sweep_report,
)
from wideseek.runtime.world_run import LIMIT_FIELDS, agent_with_limits
from wideseek.types import iter_trajectories
from wideseek.world.oracle.engine import DEMONSTRATION_FORMAT
from wideseek.world.store import load_world


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as e:
        main(argv)
    return int(e.value.code)


def run_config(run_dir) -> dict:
    return json.loads((run_dir / "run.json").read_text())


# --- limits -----------------------------------------------------------------------------------
def test_limits_come_from_flags_then_the_agent_then_the_model_then_the_one_set():
    agent = AgentConfig(lead_turns=3, subagent_turns=7)  # as a config file or --set gives them
    model = EvalLimits(lead_turns=2, subagent_turns=2, max_response_tokens=64)
    flags = EvalLimits(lead_turns=1)
    used, limits = agent_with_limits(agent, flags, model)
    assert limits == {"lead_turns": 1, "subagent_turns": 7, "max_response_tokens": 64,
                      "context_length": EVAL_LIMITS.context_length}  # fmt: skip
    assert used.lead_turns == 1 and used.context_length == EVAL_LIMITS.context_length
    assert set(limits) <= used.model_fields_set  # a model's generation config cannot undo them
    # never above what the engine holds
    _, squeezed = agent_with_limits(AgentConfig(), EvalLimits(), None, engine_context=1024)
    assert squeezed["context_length"] == 1024
    # None: the agent's own limits (the oracle's demonstrations), untouched
    own = AgentConfig(mode="single")
    assert agent_with_limits(own, None) == (own, {})


async def test_a_named_run_of_mixed_tasks_as_rl_rollouts_take_it(tmp_path):
    world = load_world()
    mixed = [t for s in ("wide", "deep") for t in world_tasks(world, s, "train", limit=1)]
    agent = AgentConfig(temperature=1.0, seed=3, top_p=1.0)
    run = await run_world(
        world, {"rollouts": mixed}, tmp_path, split="train", name="rl-step-1", agent=agent,
        limits=None, oracle=True, trials=2, show_progress=False,
    )  # fmt: skip
    assert json.loads((tmp_path / "run.json").read_text())["suite"] == "rl-step-1"
    assert sorted((t.task.id, t.trial) for t in run.trajectories()) == sorted(
        (t.id, k) for t in mixed for k in (0, 1)
    )
    assert run.limits == {} and run.runs["rollouts"].config.agent.lead_turns == agent.lead_turns


async def test_one_engine_source_at_most(tmp_path):
    world = load_world()
    tasks = {"deep": world_tasks(world, "deep", "dev", limit=1)}
    with pytest.raises(UsageError, match="at most one"):
        await run_world(world, tasks, tmp_path, split="dev", engine=ScriptedEngine(), oracle=True)
    with pytest.raises(UsageError, match="one directory each"):
        both = {**tasks, "wide": world_tasks(world, "wide", "dev", limit=1)}
        await run_world(world, both, tmp_path, split="dev", oracle=True)


# --- eval world, train eval, world oracle -----------------------------------------------------
def test_eval_world_oracle_both_suites_as_json_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["eval", "world", "--oracle", "--suite", "both", "--limit", "1", "--json",
            "--out", str(out)]  # fmt: skip
    assert run(argv) == 0
    printed = capsys.readouterr()
    scores = json.loads(printed.out)  # stdout: the JSON alone; progress went to stderr
    assert "world-wide-dev (0 done before) item_f1 1.000: 1/1 (100%)" in printed.err
    assert scores["wide_item_f1"] == 1.0 and scores["deep_em"] == 1.0
    assert scores["limits"] == EVAL_LIMITS.given()  # nothing set: the one set of limits
    assert [len(read_results(out / s)) for s in ("wide", "deep")] == [1, 1]
    agent = run_config(out / "wide")["extra"]["config"]["agent"]
    assert agent["context_length"] == EVAL_LIMITS.context_length
    assert run(argv) == 0  # resumed: nothing run twice
    assert [len(read_results(out / s)) for s in ("wide", "deep")] == [1, 1]
    assert json.loads(capsys.readouterr().out) == scores


def test_eval_world_flags_beat_set_and_reworded_runs_are_named_so(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["eval", "world", "--oracle", "--suite", "deep", "--limit", "1", "--reworded",
            "--set", "agent.lead_turns=3", "--set", "agent.subagent_turns=4",
            "--lead-turns", "2", "--json", "--out", str(out)]  # fmt: skip
    assert run(argv) == 0
    limits = json.loads(capsys.readouterr().out)["limits"]
    assert limits["lead_turns"] == 2 and limits["subagent_turns"] == 4
    info = run_config(out)
    assert info["suite"] == "world-deep-dev-reworded"
    assert info["extra"]["config"]["agent"]["lead_turns"] == 2


def test_eval_world_ids_need_one_suite(tmp_path, capsys):
    argv = ["eval", "world", "--oracle", "--suite", "both", "--ids", "x", "--out", str(tmp_path)]
    assert run(argv) == 1
    err = capsys.readouterr().err.strip()
    assert "--ids names tasks of one suite" in err and "\n" not in err


def test_train_eval_is_eval_world_on_both_suites(tmp_path, capsys):
    limits = ["--lead-turns", "4", "--subagent-turns", "5", "--max-response-tokens", "256"]
    common = ["--split", "test", "--mode", "multi", *limits]
    assert run(["train", "eval", "--oracle", "--wide", "1", "--deep", "1", *common,
                "--out", str(tmp_path / "alias")]) == 0  # fmt: skip
    alias = json.loads(capsys.readouterr().out)
    assert run(["eval", "world", "--oracle", "--suite", "both", "--limit", "1", "--json",
                "--set", "agent.temperature=0", "--set", "agent.seed=0", *common,
                "--out", str(tmp_path / "world")]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out) == alias
    assert alias["limits"] == {"lead_turns": 4, "subagent_turns": 5, "max_response_tokens": 256,
                               "context_length": 4096}  # fmt: skip
    assert (alias["wide_tasks"], alias["deep_tasks"]) == (1, 1)  # what the figures are over
    for suite in ("wide", "deep"):
        a = [
            t.final_answer
            for t in iter_trajectories(tmp_path / "alias" / suite / "trajectories.jsonl")
        ]
        b = [
            t.final_answer
            for t in iter_trajectories(tmp_path / "world" / suite / "trajectories.jsonl")
        ]
        assert a == b


def test_world_oracle_plays_its_demonstrations_under_the_agent_s_own_limits(tmp_path):
    # the demonstrations SFT learns from carry these limits in their prompts: not eval limits
    out = tmp_path / "demos"
    assert run(["world", "oracle", "--suite", "deep", "--split", "train", "--limit", "1",
                "--out", str(out)]) == 0  # fmt: skip
    agent = run_config(out)["extra"]["config"]["agent"]
    defaults = AgentConfig(seed=0).model_dump()
    assert {k: agent[k] for k in LIMIT_FIELDS} == {k: defaults[k] for k in LIMIT_FIELDS}
    assert run_config(out)["suite"] == "world-deep-train"


def test_demonstrations_of_an_older_oracle_are_not_resumed_into(tmp_path, capsys):
    # a run directory made before the oracle's texts changed: resuming would mix two formats
    out = tmp_path / "demos"
    args = ["world", "oracle", "--suite", "deep", "--split", "train", "--limit", "1"]
    assert run([*args, "--out", str(out)]) == 0
    info = run_config(out)
    (out / "run.json").write_text(json.dumps({**info, "model": "oracle"}), encoding="utf-8")
    capsys.readouterr()
    assert run([*args, "--limit", "2", "--out", str(out)]) == 1
    now = f"'oracle-v{DEMONSTRATION_FORMAT}' now"
    assert f"other settings (model 'oracle' there, {now})" in capsys.readouterr().err
    assert len(read_results(out)) == 1


# --- the width sweep --------------------------------------------------------------------------
def test_parse_widths():
    assert parse_widths("4,1, 2,4") == [1, 2, 4]
    for bad in ("", "1,x", "0,2"):
        with pytest.raises(UsageError, match="--subagents"):
            parse_widths(bad)


def test_sweep_runs_each_width_beside_a_single_agent_at_its_budget(tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["eval", "sweep", "--subagents", "1,2", "--oracle", "--limit", "2", "--out", str(out)]
    assert run(argv) == 0
    assert "| width |" in capsys.readouterr().out
    report = json.loads((out / SWEEP_JSON).read_text())
    assert [r["width"] for r in report["rows"]] == [1, 2] and report["headline"] == "item_f1"
    for row in report["rows"]:
        width = row["width"]
        multi = out / f"multi-w{width}"
        assert run_config(multi)["max_subagents"] == width
        trajectories = list(iter_trajectories(multi / "trajectories.jsonl"))
        # the budget: the tokens the multi-agent run's agents held, given to one agent
        assert row["budget"] == token_budget(trajectories) > 0
        single = run_config(out / f"single-w{width}")
        assert single["mode"] == "single" and single["extra"]["token_budget"] == row["budget"]
        assert single["extra"]["config"]["agent"]["context_length"] == row["budget"]
        assert row["single_context"] == row["budget"] and row["single"]["item_f1"] >= 0.0
    assert (out / SWEEP_PNG).exists() and "| 2 |" in (out / SWEEP_MD).read_text()
    # resumable: nothing runs twice; one more width adds its runs only
    assert run([*argv[:3], "1,2,4", *argv[4:]]) == 0
    assert len(read_results(out / "multi-w1")) == 2 and (out / "single-w4").is_dir()
    # a single-agent folder of another budget is refused, not mixed
    info = run_config(out / "single-w1")
    info["extra"]["token_budget"] += 1
    (out / "single-w1" / "run.json").write_text(json.dumps(info))
    capsys.readouterr()
    assert run(argv) == 1
    err = capsys.readouterr().err.strip()
    assert "single-w1 holds a single-agent run at a budget" in err and "\n" not in err


def test_sweep_bad_widths_are_one_line(tmp_path, capsys):
    assert run(["eval", "sweep", "--subagents", "1,two", "--oracle", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "--subagents: expected widths like 1,2,4,8" in err and "\n" not in err


def test_sweep_report_without_matplotlib_says_so(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    figures = {"item_f1": 0.5, "row_f1": 0.2, "success": 0.0, "tokens_per_run": 900.0,
               "subagents_per_run": 2.0, "seconds_per_run": 1.0, "errors": 0}  # fmt: skip
    rows = [SweepRow(2, figures, 700, dict(figures, item_f1=0.25), 700)]
    written = write_sweep_report(tmp_path, "wide", "item_f1", rows)
    assert [p.name for p in written] == [SWEEP_JSON, SWEEP_MD]
    text = (tmp_path / SWEEP_MD).read_text()
    assert "plot skipped" in text and "| 2 | 0.5000 |" in text and "0.2500" in text
