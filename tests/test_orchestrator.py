"""The multi-agent loop end to end with a scripted engine and in-memory tools."""

import asyncio
import json
from typing import Any

from run_tasks import run_many
from scripted_engine import ScriptedEngine
from wideseek.agents.agent_loop import looped_table
from wideseek.agents.orchestrator import Orchestrator
from wideseek.config import AgentConfig
from wideseek.llm.engine import Completion, EngineError, GenerateRequest
from wideseek.llm.toolcall import format_tool_call
from wideseek.types import (
    Failure,
    Task,
    ToolResult,
    Usage,
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
    repeatable = False
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
    repeatable = False
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


class InFlight:
    """Counts callers inside `hold` at once and keeps the peak (a concurrency probe)."""

    def __init__(self) -> None:
        self.now = self.peak = 0

    async def hold(self, seconds: float) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)
        await asyncio.sleep(seconds)
        self.now -= 1


async def test_subagents_run_concurrently():
    counter = InFlight()

    class CountingEngine(ScriptedEngine):
        async def generate(self, request: GenerateRequest) -> Completion:
            await counter.hold(0.05)
            return await super().generate(request)

    subtasks = [f"subtask {i}" for i in range(8)]
    engine = CountingEngine(
        {"lead": [format_tool_call("create_subagents", {"subtasks": subtasks}), TABLE]},
        fallback="nothing found",
    )
    traj = await Orchestrator(engine, tools_for).run(TASK)
    assert len(traj.subagents) == 8
    assert counter.peak == 8


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
    calls = [format_tool_call("search", {"query": q}) for q in ("chile", "peru", "bolivia")]
    engine = ScriptedEngine({"single": ["partial | table |" + call for call in calls]})
    cfg = AgentConfig(mode="single", single_turns=3)
    traj = await Orchestrator(engine, tools_for, cfg).run(TASK)
    assert traj.lead.failures == [Failure.TURN_LIMIT]
    assert traj.final_answer == "partial | table |"
    assert len(traj.lead.turns) == 3


async def test_an_agent_repeating_its_calls_is_told_then_stopped():
    again = format_tool_call("search", {"query": "chile"})
    other = format_tool_call("search", {"query": "peru"})
    engine = ScriptedEngine({"single": [again, again, other, again, again, "never reached"]})
    cfg = AgentConfig(mode="single", single_turns=10, max_repeated_turns=2)
    traj = await Orchestrator(engine, tools_for, cfg).run(TASK)
    turns = traj.lead.turns
    assert [Failure.REPEATED_CALL in t.failures for t in turns] == [False, True, False, True, True]
    assert Failure.STUCK in traj.lead.failures and not traj.lead.ok
    repeated = turns[1].tool_results[0]
    assert repeated.error and "made this exact call before" in repeated.text
    assert not turns[2].tool_results[0].error  # a new query runs


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
    assert sent_tools[0]["function"]["parameters"]["properties"]["sub_agents"] == {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"prompt": {"type": "string"}},
            "required": ["prompt"],
        },
    }


async def test_blank_subtasks_are_dropped_and_none_at_all_is_an_error():
    def delegate(*prompts):
        return format_tool_call(
            "create_sub_agents", {"sub_agents": [{"prompt": p} for p in prompts]}
        )

    lead = [delegate(), delegate(" ", "Capital of Chile"), TABLE]
    engine = ScriptedEngine({"lead": lead}, fallback="report")
    traj = await Orchestrator(engine, tools_for, AgentConfig(profile="wideseek-r1")).run(TASK)
    empty, one = (t.tool_results[0] for t in traj.lead.turns[:2])
    assert empty.error and "at least one non-empty subtask" in empty.text
    assert traj.lead.turns[0].failures == [Failure.TOOL_ERROR]
    assert not one.error and [a.prompt for a in traj.subagents] == ["Capital of Chile"]
    assert traj.final_answer == TABLE


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


class CompletionEngine:
    """Replays whole Completions (finish reason, usage), recording each request."""

    model_name = "completions"
    renderer = None

    def __init__(self, completions: list[Completion]) -> None:
        self.completions = list(completions)
        self.requests: list[GenerateRequest] = []

    async def generate(self, request: GenerateRequest) -> Completion:
        self.requests.append(request)
        return self.completions.pop(0)


SEARCH_CALL = format_tool_call("search", {"query": "chile"})
SINGLE = AgentConfig(mode="single", context_length=256)


async def test_context_full_after_a_turn_ends_the_agent_with_its_best_answer():
    # chat path: the server's token count says the context is full after the first turn
    big = Completion(
        text="partial" + SEARCH_CALL, usage=Usage(prompt_tokens=200, completion_tokens=60)
    )
    engine = CompletionEngine([big, Completion(text="never asked")])
    traj = await Orchestrator(engine, tools_for, SINGLE).run(TASK)
    assert len(engine.requests) == 1 and len(traj.lead.turns) == 1
    assert traj.lead.failures == [Failure.CONTEXT_OVERFLOW]
    assert traj.final_answer == "partial"
    assert engine.requests[0].sampling.max_tokens == 256  # the whole context is the budget
    assert engine.requests[0].sampling.stop == ["</tool_response>"]  # no self-made results


async def test_response_that_fills_the_context_is_an_overflow():
    cut = Completion(text="| a | b" + SEARCH_CALL, finish_reason="length")
    traj = await Orchestrator(CompletionEngine([cut]), tools_for, SINGLE).run(TASK)
    (turn,) = traj.lead.turns
    assert turn.failures == [Failure.CONTEXT_OVERFLOW] and turn.tool_calls == []
    assert traj.lead.failures == [Failure.CONTEXT_OVERFLOW] and traj.final_answer == "| a | b"


async def test_response_cut_by_the_per_response_cap_is_not_taken_as_final():
    engine = CompletionEngine(
        [Completion(text="| country | cap", finish_reason="length"), Completion(text=TABLE)]
    )
    cfg = SINGLE.model_copy(update={"max_response_tokens": 50})
    traj = await Orchestrator(engine, tools_for, cfg).run(TASK)
    assert traj.final_answer == TABLE and traj.lead.failures == []
    assert engine.requests[0].sampling.max_tokens == 50
    assert "cut after 50 tokens" in engine.requests[1].messages[-1].content


async def test_response_cut_while_repeating_rows_is_its_table_with_each_row_once():
    rows = "| Chile | Santiago |\n| Peru | Lima |\n"
    looping = "Here it is.\n```markdown\n| country | capital |\n|---|---|\n" + rows * 3 + "| Ch"
    engine = CompletionEngine(
        [Completion(text=looping, finish_reason="length"), Completion(text="never asked")]
    )
    cfg = SINGLE.model_copy(update={"max_response_tokens": 50})
    traj = await Orchestrator(engine, tools_for, cfg).run(TASK)
    assert len(engine.requests) == 1  # not asked again: it would loop again
    assert traj.final_answer == "Here it is.\n" + TABLE
    assert traj.lead.turns[0].failures == [Failure.LOOPED_TABLE] and traj.lead.failures == []


def test_looped_table_needs_a_repeated_line_and_keeps_new_rows():
    assert looped_table("| a | b |\n|---|---|\n| 1 | 2 |\n| 3 |") is None  # cut, not looping
    # a new row among the repeats stays; unfenced stays unfenced; the cut last line goes
    assert (
        looped_table("| a |\n|--|\n| 1 |\n| 1 |\n| 2 |\n| 1 |\n| 2") == "| a |\n|--|\n| 1 |\n| 2 |"
    )
    assert looped_table("```markdown\n| a |\n| 1 |\n| 1 |\n") == "```markdown\n| a |\n| 1 |\n```"


async def test_the_lead_may_have_a_response_cap_of_its_own():
    delegate = format_tool_call("create_subagents", {"subtasks": ["a", "b"]})
    engine = ScriptedEngine(fallback="report")
    capped = AgentConfig(max_response_tokens=64)
    own_cap = capped.model_copy(update={"lead_response_tokens": 700})
    for cfg, lead_cap in ((capped, 64), (own_cap, 700)):
        engine.queues["lead"].extend([delegate, TABLE])
        await Orchestrator(engine, tools_for, cfg).run(TASK)
        caps = {(r.metadata["role"], r.sampling.max_tokens) for r in engine.requests}
        assert caps == {("lead", lead_cap), ("subagent", 64)}
        engine.requests.clear()
    # the single agent writes the table too: the same cap, so the two modes compare
    engine.queues["single"].append(TABLE)
    await Orchestrator(engine, tools_for, own_cap.model_copy(update={"mode": "single"})).run(TASK)
    assert [(r.metadata["role"], r.sampling.max_tokens) for r in engine.requests] == [
        ("single", 700)
    ]


async def test_tool_calls_of_one_turn_run_concurrently_up_to_the_limit():
    counter = InFlight()

    class SlowSearch(DictSearch):
        async def call(self, arguments):
            await counter.hold(0.05)
            return await super().call(arguments)

    calls = "".join(format_tool_call("search", {"query": f"q{i}"}) for i in range(7))
    engine = ScriptedEngine({"single": [calls, TABLE]})
    cfg = AgentConfig(mode="single", max_tool_calls=5)
    traj = await Orchestrator(engine, lambda role: [SlowSearch(), DictAccess()], cfg).run(TASK)
    turn = traj.lead.turns[0]
    assert len(turn.tool_results) == 5 and counter.peak == 5
    assert turn.failures == [Failure.TOO_MANY_CALLS]
    assert "2 more were ignored" in engine.requests[1].messages[-1].content
    assert traj.failure_counts() == {"too_many_calls": 1}


async def test_lead_turn_limit_and_subagent_ids_across_delegations():
    delegate = format_tool_call("create_subagents", {"subtasks": ["a", "b"]})
    engine = ScriptedEngine({"lead": [delegate] * 3}, fallback="report")
    traj = await Orchestrator(engine, tools_for, AgentConfig(lead_turns=3)).run(TASK)
    assert traj.lead.failures == [Failure.TURN_LIMIT, Failure.NO_ANSWER]
    assert [a.agent_id for a in traj.agents] == list(range(7))
    assert [a.parent_id for a in traj.subagents] == [0] * 6
    ids = [t.tool_results[0].data["subagent_ids"] for t in traj.lead.turns]
    assert ids == [[1, 2], [3, 4], [5, 6]]


async def test_run_many_keeps_task_order_under_the_concurrency_cap():
    counter = InFlight()

    class CountingEngine(ScriptedEngine):
        async def generate(self, request):
            await counter.hold(0.02)
            return await super().generate(request)

    tasks = [TASK.model_copy(update={"id": f"t{i}"}) for i in range(6)]
    orchestrator = Orchestrator(
        CountingEngine(fallback=TABLE), tools_for, AgentConfig(mode="single")
    )
    trajectories = await run_many(orchestrator, tasks, concurrency=2)
    assert [t.task.id for t in trajectories] == [t.id for t in tasks]
    assert all(t.final_answer == TABLE for t in trajectories)
    assert counter.peak == 2


async def test_live_view_shows_every_agent_and_how_it_ended():
    from io import StringIO

    from rich.console import Console

    from wideseek.cli.views import LiveAgentView

    class FlakyEngine(ScriptedEngine):
        async def generate(self, request):
            if request.metadata["agent_id"] == 2:
                raise EngineError("server down")
            return await super().generate(request)

    delegate = format_tool_call("create_subagents", {"subtasks": ["a", "b"]})
    engine = FlakyEngine({"lead": [delegate, TABLE]}, fallback="report")
    out = StringIO()
    view = LiveAgentView(Console(file=out, width=100))
    with view:
        await Orchestrator(engine, tools_for, observer=view).run(TASK)
    lines = out.getvalue().splitlines()
    row = {line.split()[0] + line.split()[1]: line for line in lines if line.strip()}
    assert "done" in row["lead2"]
    assert "done" in row["subagent1"]
    assert "failed: engine_error" in row["subagent2"]
