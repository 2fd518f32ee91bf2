import json
import re

import pytest

from scripted_engine import ScriptedEngine
from test_orchestrator import TASK, responder, tools_for
from wideseek.agents.orchestrator import Orchestrator
from wideseek.cli import main
from wideseek.config import AgentConfig
from wideseek.types import read_trajectories, write_trajectories


async def test_trace_show_renders_tree(tmp_path, capsys):
    traj = await Orchestrator(ScriptedEngine(responder=responder), tools_for).run(TASK)
    path = tmp_path / "t.jsonl"
    write_trajectories(path, [traj])
    try:
        main(["trace", "show", str(path)])
    except SystemExit as e:
        assert e.code == 0
    out = capsys.readouterr().out
    assert "lead" in out and "subagent 1" in out and "subagent 2" in out
    assert "create_subagents" in out and "access(https://w.test/chile)" in out
    assert out.index("subagent 1") > out.index("create_subagents")


def test_trace_show_bad_file_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"not": "a trajectory"}\n{"x": 1}\n')
    one_bad_line = tmp_path / "one.json"
    one_bad_line.write_text('{"not": "a trajectory"}\n')
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    for path in (bad, one_bad_line, binary, tmp_path / "missing.jsonl", tmp_path):
        with pytest.raises(SystemExit) as e:
            main(["trace", "show", str(path)])
        assert e.value.code == 1, path
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and "\n" not in err, err


async def test_trace_show_reads_a_pretty_printed_trajectory(tmp_path, capsys):
    traj = await Orchestrator(ScriptedEngine(responder=responder), tools_for).run(TASK)
    path = tmp_path / "pretty.json"
    path.write_text(json.dumps(json.loads(traj.model_dump_json()), indent=2))
    assert read_trajectories(path) == [traj]
    with pytest.raises(SystemExit) as e:
        main(["trace", "show", str(path)])
    assert e.value.code == 0 and "subagent 2" in capsys.readouterr().out


async def test_trace_show_marks_failures_and_timings(tmp_path, capsys):
    engine = ScriptedEngine(
        {"single": ['<tool_call>{"name": "search", "arguments": {"query": </tool_call>']}
    )
    cfg = AgentConfig(mode="single", single_turns=1)
    traj = await Orchestrator(engine, tools_for, cfg).run(TASK)
    path = tmp_path / "t.jsonl"
    write_trajectories(path, [traj])
    with pytest.raises(SystemExit) as e:
        main(["trace", "show", str(path)])
    out = capsys.readouterr().out
    assert e.value.code == 0
    assert "single 0" in out and "1 turns" in out and re.search(r"gen \d+\.\d\ds", out)
    assert "turn_limit, no_answer" in out  # the agent's failures
    assert "malformed_call" in out and "invalid JSON" in out  # the turn's failure and error
