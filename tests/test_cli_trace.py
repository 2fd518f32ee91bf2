from test_orchestrator import TASK, responder, tools_for
from wideseek.agents.orchestrator import Orchestrator
from wideseek.cli import main
from wideseek.llm.scripted import ScriptedEngine
from wideseek.types import write_trajectories


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
    for path in (bad, tmp_path / "missing.jsonl"):
        try:
            main(["trace", "show", str(path)])
        except SystemExit as e:
            assert e.code == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and "\n" not in err
