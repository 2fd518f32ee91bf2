"""`wideseek ask` end to end: CLI → runtime → HttpEngine → fake server policy → corpus tools."""

from __future__ import annotations

import json

import pytest

from fake_openai import FakeOpenAIServer
from fake_policy import CapitalsPolicy, question, write_corpus
from wideseek.cli import main
from wideseek.types import read_trajectories


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as e:
        main(argv)
    return int(e.value.code)


def ask_over_http(tmp_path, responder, text: str, *flags: str, out=None, live=False):
    """`wideseek ask TEXT` against a fake server over the test corpus: (exit code, out, srv)."""
    corpus = write_corpus(tmp_path / "corpus.jsonl")
    out = out or tmp_path / "traj.json"
    with FakeOpenAIServer(responder=responder) as srv:
        argv = ["ask", text, *flags, "--engine", srv.base_url, "--corpus", str(corpus)]
        code = run([*argv, "--out", str(out), *([] if live else ["--no-live"])])
    return code, out, srv


def test_ask_multi_agent_over_http_and_local_corpus(tmp_path, capsys):
    code, out, _ = ask_over_http(tmp_path, CapitalsPolicy(), question(["Chile", "Peru", "Bolivia"]))
    printed = capsys.readouterr().out
    assert code == 0
    assert "Santiago" in printed and "Lima" in printed and "Sucre" in printed
    (traj,) = read_trajectories(out)
    assert [a.role for a in traj.agents].count("subagent") == 3
    sub = traj.subagents[0]
    assert [c.name for t in sub.turns for c in t.tool_calls] == ["search", "access"]
    assert "Santiago" in traj.final_answer


def test_ask_subagents_flag_caps_each_delegation(tmp_path):
    out = tmp_path / "new" / "dir" / "traj.json"  # missing directories are made
    code, _, _ = ask_over_http(
        tmp_path,
        CapitalsPolicy(),
        question(["Chile", "Peru", "Bolivia"]),
        "--subagents",
        "2",
        out=out,
    )
    assert code == 0
    (traj,) = read_trajectories(out)
    assert [a.prompt for a in traj.subagents] == [
        "Find the capital of Chile.",
        "Find the capital of Peru.",
    ]
    assert traj.lead.turns[0].tool_results[0].data["dropped"] == 1


def test_ask_single_mode_flag_reaches_the_orchestrator(tmp_path):
    code, out, srv = ask_over_http(
        tmp_path, lambda endpoint, body: "I cannot tell.", "anything", "--mode", "single"
    )
    tools = {t["function"]["name"] for t in srv.requests[-1].body["tools"]}
    assert code == 0
    (traj,) = read_trajectories(out)
    assert traj.mode == "single" and tools == {"search", "access"}


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--engine", "http://127.0.0.1:9"], "127.0.0.1:9"),
        (["--model", "/nonexistent/model"], "/nonexistent/model"),
        (["--corpus", "/nonexistent/corpus.jsonl", "--engine", "URL"], "corpus"),
        (["--set", "agent.lead_turns=zero"], "lead_turns"),
        (["--mode", "triple"], "--mode"),
        (["--subagents", "0"], "--subagents"),
        (["--no-such-flag"], "--no-such-flag"),
    ],
)
def test_ask_user_errors_are_one_line(tmp_path, capsys, argv, needle):
    with FakeOpenAIServer() as srv:
        argv = [a.replace("URL", srv.base_url) for a in argv]
        code = run(["ask", "q", "--no-live", "--out", str(tmp_path / "t.json"), *argv])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert err.startswith("error:") and "\n" not in err and needle in err


def test_ask_without_any_engine_says_how_to_get_one(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("wideseek.runtime.assembly.shipped_model_dir", lambda: None)
    code = run(["ask", "q", "--no-live", "--corpus", str(write_corpus(tmp_path / "c.jsonl"))])
    err = capsys.readouterr().err
    assert code == 1 and "--engine" in err and "--model" in err
    assert "shipped with wideseek" not in err  # no note about a model that is not there


def test_trajectory_file_is_json(tmp_path, capsys):
    _, out, _ = ask_over_http(tmp_path, CapitalsPolicy(), question(["Peru"]))
    assert json.loads(out.read_text())["task"]["question"].startswith("List the capitals")
    assert "shipped with wideseek" not in capsys.readouterr().err  # no note with a server


async def test_summarize_pages_puts_the_engines_summary_in_the_access_result(tmp_path):
    from scripted_engine import ScriptedEngine
    from wideseek.config import Config
    from wideseek.runtime import open_orchestrator
    from wideseek.types import Task

    access = '<tool_call>\n{"name": "access", "arguments": {"url": "https://w.test/peru", '
    access += '"info_to_extract": "capital"}}\n</tool_call>'
    engine = ScriptedEngine({"single": [access, "Lima."], "extractor": ["Capital: Lima"]})
    corpus = write_corpus(tmp_path / "corpus.jsonl")
    cfg = Config.model_validate(
        {"agent": {"mode": "single"}, "tools": {"corpus": str(corpus), "summarize_pages": True}}
    )
    async with open_orchestrator(cfg, engine=engine) as orchestrator:
        traj = await orchestrator.run(Task(id="p", question="Capital of Peru?", kind="qa"))
    (result,) = traj.agents[0].turns[0].tool_results
    assert "Capital: Lima" in result.text and "South America" not in result.text
    extract_request = next(r for r in engine.requests if r.metadata["role"] == "extractor")
    assert "capital" in extract_request.messages[1].content


def test_ask_without_a_final_answer_exits_non_zero(tmp_path, capsys):
    code, out, _ = ask_over_http(
        tmp_path, lambda endpoint, body: "", "anything", "--mode", "single"
    )
    assert code == 1 and "no final answer" in capsys.readouterr().out
    (traj,) = read_trajectories(out)  # the trajectory is kept all the same
    assert traj.failure_counts() == {"no_answer": 1}


def test_ask_live_view_lists_the_lead_and_each_subagent(tmp_path, capsys):
    code, _, _ = ask_over_http(tmp_path, CapitalsPolicy(), question(["Chile", "Peru"]), live=True)
    captured = capsys.readouterr()
    assert code == 0
    rows = [line.split() for line in captured.err.splitlines()]
    assert ["lead", "2", "done"] in rows
    assert ["subagent", "1", "3", "done"] in rows and ["subagent", "2", "3", "done"] in rows
    assert "Santiago" in captured.out and "subagent 1" not in captured.out  # view on stderr
