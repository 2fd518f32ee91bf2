"""The multi-agent loop end to end with a scripted engine and in-memory tools."""

import asyncio
import json
from typing import Any

from wideseek.agents.orchestrator import Orchestrator
from wideseek.config import AgentConfig
from wideseek.llm.base import Completion, EngineError, GenerateRequest
from wideseek.llm.scripted import ScriptedEngine
from wideseek.llm.toolcall import format_tool_call
from wideseek.types import (
    Failure,
    Task,
    ToolResult,
    read_trajectories,
    write_trajectories,
)

PAGES = {
    "https://w.test/chile": "Chile. Capital: Santiago.",
    "https://w.test/peru": "Peru. Capital: Lima.",
}


class DictSearch:
    name = "search"
    description = "search pages"
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {"query": {"type": "string"}},
        "required": ["query"],
    }

    async def call(self, arguments: dict[str, Any]) -> ToolResult:
        q = arguments["query"].lower()
        hits = [u for u, t in PAGES.items() if any(w in t.lower() for w in q.split())]
        return ToolResult(text="\n".join(hits) or "no results", data=hits)


class DictAccess:
    name = "access"
    description = "read a page"
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {"url": {"type": "string"}},
        "required": ["url"],
    }

    async def call(self, arguments: dict[str, Any]) -> ToolResult:
        text = PAGES.get(arguments["url"])
        return ToolResult(text=text or "not found", error=text is None)


def tools_for(role):
    return [DictSearch(), DictAccess()]


TASK = Task(id="t1", question="Capitals of Chile and Peru? Columns: country, capital.")
TABLE = "```markdown\n| country | capital |\n|---|---|\n| Chile | Santiago |\n| Peru | Lima |\n```"


def subagent_script(request: GenerateRequest) -> str:
    """Search, access the first hit, report what the page says."""
    subtask = request.messages[1].content
    country = "chile" if "Chile" in subtask else "peru"
    tool_msgs = [m for m in request.messages if m.role == "tool"]
    if not tool_msgs:
        return "<think>search first</think>" + format_tool_call("search", {"query": country})
    if len(tool_msgs) == 1:
        url = tool_msgs[0].content.split("\n")[0]
        return format_tool_call("access", {"url": url})
    return "<think>done</think>Report: " + tool_msgs[-1].content.split("\n")[0]


def lead_script(request: GenerateRequest) -> str:
    if not any(m.role == "tool" for m in request.messages):
        return format_tool_call(
            "create_subagents", {"subtasks": ["Capital of Chile", "Capital of Peru"]}
        )
    return "<think>both reports in</think>" + TABLE


def responder(request: GenerateRequest) -> str:
    if request.metadata["role"] == "lead":
        return lead_script(request)
    return subagent_script(request)


async def test_lead_delegates_and_assembles_table(tmp_path):
    traj = await Orchestrator(ScriptedEngine(responder=responder), tools_for).run(TASK)
    assert traj.error is None
    assert traj.final_answer == TABLE
    assert [a.role for a in traj.agents] == ["lead", "subagent", "subagent"]
    assert [a.parent_id for a in traj.agents] == [None, 0, 0]
    assert {a.prompt for a in traj.subagents} == {"Capital of Chile", "Capital of Peru"}
    reports = traj.lead.turns[0].tool_results[0].text
    assert "Santiago" in reports and "Lima" in reports
    for sub in traj.subagents:
        assert sub.ok and len(sub.turns) == 3
        assert [c.name for t in sub.turns for c in t.tool_calls] == ["search", "access"]
        # isolation: a subagent never sees the lead's or its sibling's messages
        assert all("create_subagents" not in m.content for m in sub.messages)
    path = tmp_path / "t.jsonl"
    write_trajectories(path, [traj])
    assert read_trajectories(path) == [traj]


async def test_subagents_run_concurrently():
    in_flight = peak = 0

    class CountingEngine(ScriptedEngine):
        async def generate(self, request: GenerateRequest) -> Completion:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.05)
            in_flight -= 1
            return await super().generate(request)

    subtasks = [f"subtask {i}" for i in range(8)]
    engine = CountingEngine(
        {"lead": [format_tool_call("create_subagents", {"subtasks": subtasks}), TABLE]},
        fallback="nothing found",
    )
    traj = await Orchestrator(engine, tools_for).run(TASK)
    assert len(traj.subagents) == 8
    assert peak == 8


async def test_malformed_unknown_and_invalid_calls_are_fed_back():
    engine = ScriptedEngine(
        {
            "single": [
                '<tool_call>{"name": "search", "arguments": {"query": </tool_call>',
                format_tool_call("browse", {"url": "x"}),
                format_tool_call("search", {"q": "chile"}),
                "```markdown\n| a |\n|---|\n| 1 |\n```",
            ]
        }
    )
    cfg = AgentConfig(mode="single")
    traj = await Orchestrator(engine, tools_for, cfg).run(TASK)
    single = traj.lead
    assert single.role == "single" and single.answer.startswith("```markdown")
    t0, t1, t2 = single.turns[:3]
    assert Failure.MALFORMED_CALL in t0.failures and "invalid JSON" in t0.errors[0]
    assert t1.tool_results[0].error and "unknown tool `browse`" in t1.tool_results[0].text
    assert t2.tool_results[0].error and "query" in t2.tool_results[0].text
    # an unknown tool and arguments against the schema are malformed calls, not tool errors
    for turn in (t1, t2):
        assert turn.failures == [Failure.MALFORMED_CALL]
    # the model saw the error on its next turn
    second_prompt = engine.requests[1].messages
    assert "invalid JSON" in second_prompt[-1].content
    assert "unknown tool `browse`" in engine.requests[2].messages[-1].content
    # counted on the trajectory, once per turn
    assert traj.failure_counts() == {"malformed_call": 3}


async def test_turn_limit_keeps_best_answer_and_flags():
    call = format_tool_call("search", {"query": "chile"})
    engine = ScriptedEngine({"single": ["partial | table |" + call] * 3})
    cfg = AgentConfig(mode="single", single_turns=3)
    traj = await Orchestrator(engine, tools_for, cfg).run(TASK)
    assert traj.lead.failures == [Failure.TURN_LIMIT]
    assert traj.final_answer == "partial | table |"
    assert len(traj.lead.turns) == 3


async def test_engine_error_and_subagent_limit_are_recorded():
    subtasks = [f"s{i}" for i in range(5)]

    class FlakyEngine(ScriptedEngine):
        async def generate(self, request):
            if request.metadata["role"] == "subagent" and request.metadata["agent_id"] == 2:
                raise EngineError("http://127.0.0.1:9/v1: connection refused")
            return await super().generate(request)

    engine = FlakyEngine(
        {"lead": [format_tool_call("create_subagents", {"subtasks": subtasks}), TABLE]},
        fallback="report",
    )
    cfg = AgentConfig(max_subagents=3)
    traj = await Orchestrator(engine, tools_for, cfg).run(TASK)
    assert len(traj.subagents) == 3
    result = traj.lead.turns[0].tool_results[0]
    assert result.data["dropped"] == 2 and "were not run" in result.text
    failed = traj.agents[2]
    assert (
        failed.failures == [Failure.ENGINE_ERROR]
        and "connection refused" in failed.turns[0].errors[0]
    )
    assert "failed" in result.text
    assert Failure.SUBAGENT_FAILED in traj.lead.failures
    assert traj.final_answer == TABLE


async def test_r1_profile_reads_first_call_and_batched_delegation():
    lead_calls = format_tool_call(
        "create_sub_agents", {"sub_agents": [{"prompt": "Capital of Chile"}]}
    ) + format_tool_call("create_sub_agents", {"sub_agents": [{"prompt": "ignored"}]})
    engine = ScriptedEngine({"lead": [lead_calls, TABLE]}, fallback="report")
    cfg = AgentConfig(profile="wideseek-r1")
    traj = await Orchestrator(engine, tools_for, cfg).run(TASK)
    assert [a.prompt for a in traj.subagents] == ["Capital of Chile"]
    assert Failure.TOO_MANY_CALLS in traj.lead.turns[0].failures
    # r1 subagents also see the main task
    assert TASK.question in traj.subagents[0].messages[1].content
    sent_tools = engine.requests[0].tools
    assert sent_tools[0]["function"]["name"] == "create_sub_agents"
    assert json.dumps(sent_tools[0]["function"]["parameters"]).count("prompt") >= 1


async def test_real_local_corpus_tools_in_both_profiles(tmp_path):
    from wideseek.tools.local_corpus import LocalCorpus

    corpus = tmp_path / "pages.jsonl"
    corpus.write_text(
        "\n".join(
            json.dumps({"id": str(i), "url": url, "title": url.rsplit("/", 1)[1], "text": text})
            for i, (url, text) in enumerate(PAGES.items())
        )
    )
    backend = LocalCorpus(corpus)
    calls = {
        "wideseek": [
            format_tool_call("search", {"query": "capital of Chile"})
            + format_tool_call("access", {"url": "https://w.test/peru"}),
        ],
        "wideseek-r1": [
            format_tool_call(
                "search", {"queries": [{"query": "Chile capital"}, {"query": "Peru capital"}]}
            ),
            format_tool_call(
                "access", {"urls": [{"url": "https://w.test/peru", "info_to_extract": "capital"}]}
            ),
        ],
    }
    for profile, subagent_turns in calls.items():
        delegate = DELEGATE_CALLS[profile]
        engine = ScriptedEngine({"lead": [delegate, TABLE], "subagent": [*subagent_turns, "ok"]})
        orch = Orchestrator.with_backend(engine, backend, AgentConfig(profile=profile))
        traj = await orch.run(TASK)
        sub = traj.subagents[0]
        results = [r for t in sub.turns for r in t.tool_results]
        assert not any(r.error for r in results), profile
        text = "\n".join(r.text for r in results)
        assert "https://w.test/chile" in text and "Capital: Lima" in text, profile


DELEGATE_CALLS = {
    "wideseek": format_tool_call("create_subagents", {"subtasks": ["Capitals"]}),
    "wideseek-r1": format_tool_call("create_sub_agents", {"sub_agents": [{"prompt": "Capitals"}]}),
}
