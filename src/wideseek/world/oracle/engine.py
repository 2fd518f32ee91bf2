"""The oracle: an Engine that plays every agent of the offline world's tasks well.

Contract. `OracleEngine(tasks)` implements the Engine protocol on the chat path: from
`request.messages`, `request.tools` and `request.metadata["role"]` it works out which agent is
speaking and answers with that agent's next turn, in the text format models write (`<think>`,
`<tool_call>` blocks, a final answer). It runs inside the real runtime (orchestrator, agent
loop, search/access over the world's corpus), so its trajectories are demonstrations a small
model can be trained on.

What it may know: the tasks it was built with, matched by the question text, for planning
(entity kind, columns and which page holds them, the shape of a deep question). What it may not:
answers. Every value it writes comes from tool results in the speaking agent's own context;
a subagent knows only its subtask, which the lead wrote in `oracle.text`'s fixed phrasing.

The engine keeps no state between calls: a policy (`oracle.policies`) is a generator, and each
call replays it over the tool results already in the conversation to reach the next turn, so
any number of agents can run concurrently and a turn is a pure function of the conversation.
Both tool profiles are played (`ToolStyle`): `wideseek` and the batched calls of `wideseek-r1`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from wideseek.llm.base import ChatRenderer, Completion, EngineError, GenerateRequest
from wideseek.llm.toolcall import format_tool_call
from wideseek.types import Message, Task, Usage
from wideseek.world.oracle.policies import (
    OracleError,
    Policy,
    Say,
    lead_deep,
    lead_wide,
    single_deep,
    single_wide,
    subagent,
)
from wideseek.world.oracle.steps import Call
from wideseek.world.pages import approx_tokens

# Suffixes the runtime adds to what an agent reads (agents/prompts.py): the turn budget after
# the task, and the turns-left hint after the last tool result of a turn.
_TURNS = re.compile(r"\n\nYou have \d+ turns\.$")
_HINT = re.compile(r"\n\[(?:\d+ turns left|last turn: [^\]]*)\]$")
_MAIN_TASK = re.compile(r"^Main task: .*?\n\nYour subtask: ", re.S)
_MAX_CALLS = re.compile(r"Use up to (\d+) tool calls per turn")
_MAX_SUBAGENTS = re.compile(r"at most (\d+) per call")


def replay(policy: Policy, transcript: list[list[str]]) -> Say:
    """The policy's next turn after the turns whose tool results are `transcript`."""
    try:
        step = next(policy)
        for results in transcript:
            step = policy.send(results)
    except StopIteration as e:  # more turns in the conversation than the policy has
        raise OracleError("the conversation went past the end of the policy") from e
    return step if isinstance(step, Say) else Say(calls=step)


@dataclass(frozen=True)
class ToolStyle:
    """How a role's search/access tools take calls. The `wideseek` profile: one call per item,
    several per turn. The `wideseek-r1` profile: subagents batch items into one `search` or
    `access` call, only the first call of a turn runs, and `access` needs `info_to_extract`."""

    batched: bool = False
    first_call_only: bool = False
    info_required: bool = False


WIDESEEK = ToolStyle()
# What an r1 `access` is asked to extract; without an extractor the page comes back whole.
R1_INFO = "the facts the task asks for"
_RESULT_START = re.compile(r"\n\n(?=## (?:Search results for|Page): )")


def tool_style(tools: list[dict[str, Any]] | None) -> ToolStyle:
    params = {t["function"]["name"]: t["function"]["parameters"] for t in tools or []}
    if "queries" in params.get("search", {}).get("properties", {}):
        return ToolStyle(batched=True, first_call_only=True, info_required=True)
    if "info_to_extract" in params.get("access", {}).get("required", []):
        return ToolStyle(first_call_only=True, info_required=True)  # r1's single agent
    return WIDESEEK


def render_calls(calls: list[Call], style: ToolStyle) -> list[Call]:
    """The calls as the tools of `style` take them (items grouped into batched calls)."""
    if style.info_required:
        calls = [
            Call(c.name, {**c.arguments, "info_to_extract": R1_INFO}) if c.name == "access" else c
            for c in calls
        ]
    if not style.batched:
        return calls
    grouped: dict[str, list[dict[str, Any]]] = {}
    for call in calls:
        grouped.setdefault(call.name, []).append(call.arguments)
    key = {"search": "queries", "access": "urls"}
    return [Call(name, {key[name]: items}) for name, items in grouped.items()]


def render(say: Say, style: ToolStyle = WIDESEEK) -> str:
    head = f"<think>\n{say.think}\n</think>\n\n" if say.think else ""
    if say.calls:
        calls = render_calls(say.calls, style)
        return head + "\n".join(format_tool_call(c.name, c.arguments) for c in calls)
    return head + say.answer


def transcript(messages: list[Message], style: ToolStyle = WIDESEEK) -> list[list[str]]:
    """Per assistant turn with tool calls, the result text of each call item (hints removed)."""
    results = {
        m.tool_call_id: _HINT.sub("", m.content)
        for m in messages
        if m.role == "tool" and m.tool_call_id is not None
    }
    turns = []
    for m in messages:
        if m.role != "assistant" or not m.tool_calls:
            continue
        texts = [results.get(call.id, "") for call in m.tool_calls]
        if style.batched:  # one result text per batched call: split it into its items
            texts = [item for text in texts for item in _RESULT_START.split(text)]
        turns.append(texts)
    return turns


def _limit(pattern: re.Pattern[str], system: str, default: int) -> int:
    match = pattern.search(system)
    return int(match.group(1)) if match else default


def _delegate_tool(tools: list[dict[str, Any]] | None) -> tuple[str, str, bool]:
    """(tool name, list argument, items are {"prompt": ...}) of the lead's delegation tool."""
    if not tools:
        raise OracleError("the lead was given no delegation tool")
    function = tools[0]["function"]
    key, schema = next(iter(function["parameters"]["properties"].items()))
    return function["name"], key, schema["items"].get("type") == "object"


class OracleEngine:
    model_name = "oracle"
    renderer: ChatRenderer | None = None

    def __init__(self, tasks: Iterable[Task]) -> None:
        self._tasks = {t.question.strip(): t for t in tasks}

    def _task(self, user: str) -> Task:
        question = _TURNS.sub("", user).removeprefix("Task: ").strip()
        task = self._tasks.get(question)
        if task is None:
            raise OracleError(f"unknown task: {question[:80]!r}")
        return task

    def _policy(self, request: GenerateRequest) -> Policy:
        messages = request.messages or []
        if len(messages) < 2:
            raise OracleError("the oracle plays the chat path: system and user messages needed")
        system, user = messages[0].content, messages[1].content
        role = request.metadata.get("role")
        style = tool_style(request.tools)
        capacity = (
            1 if style.first_call_only and not style.batched else _limit(_MAX_CALLS, system, 5)
        )
        if role == "subagent":
            subtask = _MAIN_TASK.sub("", _TURNS.sub("", user))
            return subagent(subtask, capacity, one_tool=style.batched)
        task = self._task(user)
        if role == "lead":
            name, key, wrapped = _delegate_tool(request.tools)

            def delegate(subtasks: list[str]) -> Call:
                items = [{"prompt": s} for s in subtasks] if wrapped else subtasks
                return Call(name, {key: items})

            if task.kind == "qa":
                return lead_deep(task, delegate)
            return lead_wide(task, delegate, _limit(_MAX_SUBAGENTS, system, 10))
        if role == "single":
            return single_deep(task, capacity) if task.kind == "qa" else single_wide(task, capacity)
        raise OracleError(f"unknown role {role!r}")

    async def generate(self, request: GenerateRequest) -> Completion:
        style = tool_style(request.tools)
        try:
            say = replay(self._policy(request), transcript(request.messages or [], style))
        except OracleError as e:
            raise EngineError(f"oracle: {e}") from e
        text = render(say, style)
        prompt = sum(approx_tokens(m.content) for m in request.messages or [])
        return Completion(
            text=text,
            finish_reason="stop",
            usage=Usage(prompt_tokens=prompt, completion_tokens=approx_tokens(text)),
        )
