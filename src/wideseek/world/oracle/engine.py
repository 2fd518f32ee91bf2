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
It plays the tool profile and limits of the `AgentConfig` it is given (the same config the
orchestrator runs with): how calls are shaped and batched comes from the profile, never from
the prompt text or the tool schemas.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from wideseek.agents import prompts
from wideseek.config import AgentConfig
from wideseek.llm.engine import ChatRenderer, Completion, EngineError, GenerateRequest
from wideseek.llm.toolcall import format_tool_call
from wideseek.profiles import WIDESEEK, ToolProfile, get_profile
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
from wideseek.world.reworded import template_view


def replay(policy: Policy, transcript: list[list[str]]) -> Say:
    """The policy's next turn after the turns whose tool results are `transcript`."""
    try:
        step = next(policy)
        for results in transcript:
            step = policy.send(results)
    except StopIteration as e:  # more turns in the conversation than the policy has
        raise OracleError("the conversation went past the end of the policy") from e
    return step if isinstance(step, Say) else Say(calls=step)


# What an r1 `access` is asked to extract; without an extractor the page comes back whole.
R1_INFO = "the facts the task asks for"
_RESULT_START = re.compile(r"\n\n(?=## (?:Search results for|Page): )")


def render_calls(calls: list[Call], profile: ToolProfile, batched: bool) -> list[Call]:
    """The calls as the profile's tools take them (items grouped into batched calls)."""
    if profile.access_needs_info:
        calls = [
            Call(c.name, {**c.arguments, "info_to_extract": R1_INFO}) if c.name == "access" else c
            for c in calls
        ]
    if not batched:
        return calls
    grouped: dict[str, list[dict[str, Any]]] = {}
    for call in calls:
        grouped.setdefault(call.name, []).append(call.arguments)
    key = {"search": "queries", "access": "urls"}
    return [Call(name, {key[name]: items}) for name, items in grouped.items()]


def render(say: Say, profile: ToolProfile = WIDESEEK, batched: bool = False) -> str:
    head = f"<think>\n{say.think}\n</think>\n\n" if say.think else ""
    if say.calls:
        calls = render_calls(say.calls, profile, batched)
        return head + "\n".join(format_tool_call(c.name, c.arguments) for c in calls)
    return head + say.answer


def transcript(messages: list[Message], batched: bool = False) -> list[list[str]]:
    """Per assistant turn with tool calls, the result text of each call item (hints removed)."""
    results = {
        m.tool_call_id: prompts.without_turn_hint(m.content)
        for m in messages
        if m.role == "tool" and m.tool_call_id is not None
    }
    turns = []
    for m in messages:
        if m.role != "assistant" or not m.tool_calls:
            continue
        texts = [results.get(call.id, "") for call in m.tool_calls]
        if batched:  # one result text per batched call: split it into its items
            texts = [item for text in texts for item in _RESULT_START.split(text)]
        turns.append(texts)
    return turns


# What the oracle writes, versioned: raised whenever its texts change, so a resumed run of an
# older oracle is refused (the run directory records another model name) rather than mixing
# two formats of demonstrations. 2: numbered lister reports. 3: a keyed cut's ends number first
# ("from 32: Germanium to 41: Niobium"), as the world's keyed lists now write their items.
DEMONSTRATION_FORMAT = 3


class OracleEngine:
    model_name = f"oracle-v{DEMONSTRATION_FORMAT}"
    renderer: ChatRenderer | None = None

    def __init__(self, tasks: Iterable[Task], config: AgentConfig | None = None) -> None:
        # matched by the question asked, planned from the template's wording (a reworded task)
        self._tasks = {t.question.strip(): template_view(t) for t in tasks}
        self.config = config or AgentConfig()
        self.profile = get_profile(self.config.profile)

    def _task(self, user: str) -> Task:
        question = prompts.question_of(user)
        task = self._tasks.get(question)
        if task is None:
            raise OracleError(f"unknown task: {question[:80]!r}")
        return task

    def _policy(self, request: GenerateRequest, role: str | None, batched: bool) -> Policy:
        messages = request.messages or []
        if len(messages) < 2:
            raise OracleError("the oracle plays the chat path: system and user messages needed")
        user = messages[1].content
        profile, max_calls = self.profile, self.config.max_tool_calls
        if role == "subagent":
            capacity = profile.items_per_turn("subagent", max_calls)
            return subagent(prompts.subtask_of(user), capacity, one_tool=batched)
        task = self._task(user)
        if role == "lead":

            def delegate(subtasks: list[str]) -> Call:
                return Call(profile.delegate_tool, profile.delegate_arguments(subtasks))

            if task.kind == "qa":
                return lead_deep(task, delegate)
            return lead_wide(task, delegate, self.config.max_subagents)
        if role == "single":
            capacity = profile.items_per_turn("single", max_calls)
            return single_deep(task, capacity) if task.kind == "qa" else single_wide(task, capacity)
        raise OracleError(f"unknown role {role!r}")

    async def generate(self, request: GenerateRequest) -> Completion:
        role = request.metadata.get("role")
        batched = role in ("subagent", "single") and self.profile.batched(role)
        try:
            policy = self._policy(request, role, batched)
            say = replay(policy, transcript(request.messages or [], batched))
        except OracleError as e:
            raise EngineError(f"oracle: {e}") from e
        text = render(say, self.profile, batched)
        prompt = sum(approx_tokens(m.content) for m in request.messages or [])
        return Completion(
            text=text,
            finish_reason="stop",
            usage=Usage(prompt_tokens=prompt, completion_tokens=approx_tokens(text)),
        )
