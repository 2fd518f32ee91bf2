"""The multi-agent loop over the real HTTP path when the model server misbehaves.

A lead and three subagents run through HttpEngine against the loopback fake server
(tests/fake_openai.py), with BM25 tools over a corpus file. One subagent writes malformed tool
calls (bad JSON in the text, an unknown tool, arguments against the schema), one meets a 500
and a timeout that the engine retries, one meets a server that keeps failing. Every mishap
must end up on the trajectory, and the run must still produce the lead's table.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fake_openai import FakeOpenAIServer, Fault, chat_reply
from fake_policy import write_corpus
from wideseek.config import Config
from wideseek.runtime import open_orchestrator
from wideseek.types import Failure, Task, read_trajectories, write_trajectories

SUBTASKS = ["malformed: Chile", "retry: Peru", "down: Bolivia", "toolong: Ecuador"]
TASK = Task(
    id="http", question="Capitals of Chile, Peru, Bolivia, Ecuador? Columns: Country, Capital."
)
TOO_LONG = "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens."
BAD_JSON = '<tool_call>\n{"name": "search", "arguments": {"query": </tool_call>'


class MisbehavingServer:
    """`responder(endpoint, body)`: the lead delegates SUBTASKS, then tabulates the reports."""

    def __init__(self) -> None:
        self.attempts: dict[str, int] = {}  # requests seen per subtask, faulted ones included

    def __call__(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any] | Fault:
        messages = body["messages"]
        tools = {t["function"]["name"] for t in body["tools"]}
        if "create_subagents" in tools:
            if messages[-1]["role"] != "tool":
                return chat_reply(tool_calls=[("create_subagents", {"subtasks": SUBTASKS})])
            found = re.findall(r"capital of (\w+) is (\w+)", messages[-1]["content"])
            rows = "".join(f"| {country} | {capital} |\n" for country, capital in found)
            return chat_reply(f"```markdown\n| Country | Capital |\n|---|---|\n{rows}```")
        kind, country = re.search(r"(\w+): (\w+)", messages[1]["content"]).groups()
        attempt = self.attempts[kind] = self.attempts.get(kind, 0) + 1
        if kind == "down":
            return Fault.http(503)
        if kind == "toolong" and attempt == 2:  # after its search: the results filled the context
            return Fault.http(400, message=TOO_LONG)
        if kind == "retry" and attempt == 1:
            return Fault.http(500)
        if kind == "retry" and attempt == 2:
            return Fault.delay(1.0)  # past the client timeout: retried
        turn = sum(m["role"] == "assistant" for m in messages)
        steps = [("search", {"query": country})]
        if kind == "malformed":
            steps = [BAD_JSON, ("browse", {"url": "x"}), ("search", {"q": country}), *steps]
        if turn < len(steps):
            step = steps[turn]
            return chat_reply(step) if isinstance(step, str) else chat_reply(tool_calls=[step])
        capital = re.search(r"capital is (\w+)", messages[-1]["content"]).group(1)
        return chat_reply(f"The capital of {country} is {capital}.")


async def test_malformed_calls_retries_and_a_dead_subagent_are_recorded(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="wideseek.llm.http")
    server = MisbehavingServer()
    with FakeOpenAIServer(responder=server) as srv:
        cfg = Config.model_validate(
            {
                "engine": {"base_url": srv.base_url, "timeout_s": 0.5, "max_retries": 2},
                "tools": {"corpus": str(write_corpus(tmp_path / "corpus.jsonl"))},
            }
        )
        async with open_orchestrator(cfg) as orchestrator:
            traj = await orchestrator.run(TASK)
        bodies = srv.bodies("chat")

    assert traj.error is None
    assert "| Chile | Santiago |" in traj.final_answer and "| Peru | Lima |" in traj.final_answer
    malformed, retried, down, too_long = traj.subagents
    assert [a.prompt for a in (malformed, retried, down, too_long)] == SUBTASKS

    # malformed calls: a failure on each of those turns, and an error the model read next turn
    assert [t.failures for t in malformed.turns[:3]] == [[Failure.MALFORMED_CALL]] * 3
    assert malformed.ok and malformed.answer == "The capital of Chile is Santiago."
    seen = [
        b["messages"][-1]["content"] for b in bodies if "malformed" in b["messages"][1]["content"]
    ]
    assert "invalid JSON" in seen[1]
    assert "unknown tool `browse`" in seen[2]
    assert "invalid arguments for `search`" in seen[3] and "'query' is a required" in seen[3]

    # a 500 and a timeout are retried by the engine: the agent never sees them
    assert retried.ok and retried.failures == [] and all(not t.failures for t in retried.turns)
    assert server.attempts["retry"] == len(retried.turns) + 2
    assert "HTTP 500" in caplog.text and "timed out after 0.5s" in caplog.text

    # a server that keeps failing ends that subagent, and the lead carries on without it
    assert down.failures == [Failure.ENGINE_ERROR] and server.attempts["down"] == 3
    (turn,) = down.turns
    assert "HTTP 503" in turn.errors[0] and "gave up after 3 attempts" in turn.errors[0]
    assert "Bolivia" not in traj.final_answer
    report = traj.lead.turns[0].tool_results[0].text
    assert "## Subagent 3: down: Bolivia\n(failed" in report

    # a server that refuses the grown prompt as too long: a full context, not a broken engine
    assert too_long.failures == [Failure.CONTEXT_OVERFLOW] and server.attempts["toolong"] == 2
    assert too_long.turns[-1].failures == [Failure.CONTEXT_OVERFLOW]
    assert "maximum context length" in too_long.turns[-1].errors[0]
    assert traj.lead.failures == [Failure.SUBAGENT_FAILED]  # once per lead turn
    assert traj.failure_counts() == {
        "malformed_call": 3,
        "engine_error": 1,
        "context_overflow": 1,
        "subagent_failed": 1,
    }

    path = tmp_path / "trajectory.jsonl"
    write_trajectories(path, [traj])
    assert read_trajectories(path) == [traj]
