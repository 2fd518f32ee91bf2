"""One agent's turn loop, shared by every role: generate, parse tool calls, run tools, repeat.

`run_agent` takes an AgentRun already holding its first messages and fills in its turns. The
loop knows roles only through the tools it is given and its turn budget; it knows nothing about
subagents (the lead's delegation tool spawns them) nor about scoring.

Two engine paths:
1. token path (engine.renderer set): the context is a running list of token ids; each response's
   ids are appended, then the rendered tool results, so turn k's prompt is exactly what the model
   saw (the trainer rebuilds it from the Turn records).
2. chat path: the message list is sent as is; the server renders it.

Every way an agent can go wrong ends in a recorded Failure and a clean return:
malformed calls are answered with an error the model sees on its next turn, tool errors come
back as tool results, engine errors, context overflow and the turn limit end the agent with
the best answer it had so far. A response cut by its cap while repeating table rows it already
wrote is taken as the answer with each row once (a greedy small model that loses its place in
a table loops; asked again, it loops again, a whole response per turn left).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from wideseek.agents import prompts
from wideseek.llm.chat_template import TOOL_RESPONSE_END
from wideseek.llm.engine import (
    Completion,
    ContextLengthError,
    Engine,
    EngineError,
    GenerateRequest,
    SamplingParams,
)
from wideseek.llm.toolcall import parse_tool_calls
from wideseek.tools.base import Tool, tool_schema, validate_arguments
from wideseek.types import AgentRun, Failure, Message, ToolCall, ToolResult, Turn


class AgentObserver(Protocol):
    """Live progress hooks (the CLI's live view); every method must return quickly."""

    def agent_started(self, agent: AgentRun) -> None: ...

    def turn_finished(self, agent: AgentRun, turn: Turn) -> None: ...

    def agent_finished(self, agent: AgentRun) -> None: ...


class NullObserver:
    def agent_started(self, agent: AgentRun) -> None:
        pass

    def turn_finished(self, agent: AgentRun, turn: Turn) -> None:
        pass

    def agent_finished(self, agent: AgentRun) -> None:
        pass


@dataclass
class LoopLimits:
    max_turns: int
    max_calls_per_turn: int  # tool calls kept from one response; extras are dropped and reported
    context_length: int
    max_response_tokens: int | None
    temperature: float
    top_p: float
    top_k: int | None  # None: the engine's default (see SamplingParams.top_k)
    seed: int | None  # this agent's own seed; each turn samples with a seed derived from it
    turn_hints: bool
    max_repeated_turns: int = 2  # turns in a row of only repeated calls before the agent stops


def derive_seed(*parts: object) -> int:
    """A seed determined by `parts` (e.g. seed, task id, trial, agent id), spread over 31 bits
    so that engines which take only 32-bit seeds accept it."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % (2**31 - 1)


async def run_agent(
    agent: AgentRun,
    engine: Engine,
    tools: Sequence[Tool],
    limits: LoopLimits,
    observer: AgentObserver | None = None,
) -> AgentRun:
    observer = observer or NullObserver()
    by_name = {t.name: t for t in tools}
    schemas = [tool_schema(t) for t in tools] or None
    agent.tool_schemas = schemas or []
    renderer = engine.renderer
    context_ids: list[int] | None = None  # token path only
    pending_ids: list[int] = []  # ids added to the context since the last generation
    if renderer is not None:
        context_ids = renderer.render_prompt(agent.messages, schemas)
        pending_ids = list(context_ids)
    last_prompt_tokens = 0  # chat path: the server's count for the previous turn
    made: set[str] = set()  # every tool call this agent made so far (name + arguments)
    repeats = 0  # turns in a row whose calls all repeated earlier ones
    agent.started_at = time.time()
    observer.agent_started(agent)
    finished = False

    for index in range(limits.max_turns):
        prompt_len = len(context_ids) if context_ids is not None else last_prompt_tokens
        budget = limits.context_length - prompt_len
        if budget <= 0:
            agent.failures.append(Failure.CONTEXT_OVERFLOW)
            break
        max_tokens = min(budget, limits.max_response_tokens or budget)
        request = GenerateRequest(
            prompt_token_ids=list(context_ids) if context_ids is not None else None,
            messages=None if context_ids is not None else list(agent.messages),
            tools=None if context_ids is not None else schemas,
            sampling=SamplingParams(
                temperature=limits.temperature,
                top_p=limits.top_p,
                top_k=limits.top_k,
                max_tokens=max_tokens,
                # a model that starts writing its own tool results stops there (as RLinf does)
                stop=[TOOL_RESPONSE_END],
                seed=None if limits.seed is None else derive_seed(limits.seed, index),
            ),
            metadata={"role": agent.role, "agent_id": agent.agent_id, "turn": index},
        )
        turn = Turn(
            index=index,
            n_context_messages=len(agent.messages),
            added_prompt_token_ids=pending_ids if context_ids is not None else None,
            started_at=time.time(),
        )
        try:
            completion = await engine.generate(request)
        except EngineError as e:
            # a server that refuses an over-long prompt: the context is full, not the engine down
            failure = (
                Failure.CONTEXT_OVERFLOW
                if isinstance(e, ContextLengthError)
                else Failure.ENGINE_ERROR
            )
            turn.errors.append(str(e))
            turn.failures.append(failure)
            turn.finish_reason = "error"
            agent.turns.append(turn)
            agent.failures.append(failure)
            observer.turn_finished(agent, turn)
            break
        turn.generate_s = time.time() - turn.started_at
        _record_completion(turn, completion)
        agent.turns.append(turn)
        last_prompt_tokens = completion.usage.prompt_tokens + completion.usage.completion_tokens

        parsed = parse_tool_calls(completion.text, id_prefix=f"a{agent.agent_id}t{index}")
        calls = completion.tool_calls if completion.tool_calls is not None else parsed.calls
        errors = list(parsed.errors)
        agent.messages.append(
            Message(role="assistant", content=completion.text, tool_calls=calls or None)
        )

        if completion.finish_reason == "length":
            if max_tokens >= budget:
                # The response filled the whole context: it cannot grow any further.
                turn.failures.append(Failure.CONTEXT_OVERFLOW)
                agent.failures.append(Failure.CONTEXT_OVERFLOW)
                observer.turn_finished(agent, turn)
                break
            looped = None if calls or errors else looped_table(parsed.content)
            if looped is not None:
                turn.failures.append(Failure.LOOPED_TABLE)
                agent.answer = looped
                finished = True
                observer.turn_finished(agent, turn)
                break
            # Cut by the per-response cap: say so, so that a cut answer is not taken as final.
            errors.append(f"your response was cut after {max_tokens} tokens; be shorter")
        if not calls and not errors:
            agent.answer = parsed.content
            finished = True
            observer.turn_finished(agent, turn)
            break

        calls, dropped = _apply_call_limit(calls, limits)
        if dropped:
            errors.append(
                f"only {len(calls)} tool call(s) per turn are run; {dropped} more were ignored"
            )
            turn.failures.append(Failure.TOO_MANY_CALLS)
        # An unknown tool or arguments that break its schema are malformed calls, like bad JSON:
        # the model's mistake, answered with an error result instead of running anything.
        problems = [_call_problem(c, by_name) for c in calls]
        if parsed.errors or any(problems):
            turn.failures.append(Failure.MALFORMED_CALL)
        # (a tool marked `repeatable`, like delegation, gives something new each time: a retry)
        keys = [_call_key(c) for c in calls if not _repeatable(by_name.get(c.name))]
        if keys and len(keys) == len(calls) and all(k in made for k in keys):
            # Running them again would show the same results: say so instead, and stop an
            # agent that keeps looping (greedy small models do) before it burns its turns.
            turn.failures.append(Failure.REPEATED_CALL)
            repeats += 1
            problems = [p or REPEATED_CALL_TEXT for p in problems]
        else:
            repeats = 0
        made.update(keys)
        turn.tool_calls = calls
        tools_start = time.time()
        turn.tool_results = list(
            await asyncio.gather(
                *(_run_call(c, by_name, p) for c, p in zip(calls, problems, strict=True))
            )
        )
        turn.tools_s = time.time() - tools_start
        if any(r.error for r, p in zip(turn.tool_results, problems, strict=True) if p is None):
            turn.failures.append(Failure.TOOL_ERROR)
        turn.errors.extend(errors)

        feedback = _feedback_messages(turn, errors)
        turns_left = limits.max_turns - index - 1
        if limits.turn_hints and feedback and turns_left > 0:
            last = feedback[-1]
            last.content = f"{last.content}\n{prompts.turns_left_hint(turns_left)}"
        agent.messages.extend(feedback)
        if context_ids is not None and renderer is not None:
            response_ids = turn.response_token_ids or []
            pending_ids = renderer.render_tool_turn(response_ids, [m.content for m in feedback])
            context_ids.extend(response_ids)
            context_ids.extend(pending_ids)
        observer.turn_finished(agent, turn)
        if repeats >= limits.max_repeated_turns:
            agent.failures.append(Failure.STUCK)
            break
    else:
        agent.failures.append(Failure.TURN_LIMIT)

    if not finished and agent.answer is None:
        agent.answer = _best_answer_so_far(agent)
    agent.duration_s = time.time() - agent.started_at
    observer.agent_finished(agent)
    return agent


REPEATED_CALL_TEXT = (
    "not run: you made this exact call before and its result is above; use it, try another "
    "query or page, or give your answer"
)


def _repeatable(tool: Tool | None) -> bool:
    return tool is not None and tool.repeatable


def _call_key(call: ToolCall) -> str:
    return json.dumps([call.name, call.arguments], sort_keys=True, ensure_ascii=False)


def _record_completion(turn: Turn, completion: Completion) -> None:
    turn.response_text = completion.text
    turn.response_token_ids = completion.token_ids
    turn.response_logprobs = completion.logprobs
    turn.finish_reason = completion.finish_reason
    turn.usage = completion.usage


def _apply_call_limit(calls: list[ToolCall], limits: LoopLimits) -> tuple[list[ToolCall], int]:
    keep = limits.max_calls_per_turn
    return calls[:keep], max(0, len(calls) - keep)


def _call_problem(call: ToolCall, tools: dict[str, Tool]) -> str | None:
    """Why `call` cannot be run (unknown tool, arguments against the schema), or None."""
    tool = tools.get(call.name)
    if tool is None:
        names = ", ".join(f"`{n}`" for n in tools) or "none"
        return f"unknown tool `{call.name}`; available: {names}"
    return validate_arguments(tool, call.arguments)


async def _run_call(call: ToolCall, tools: dict[str, Tool], problem: str | None) -> ToolResult:
    if problem is not None:
        return ToolResult(text=problem, error=True)
    try:
        return await tools[call.name].call(call.arguments)
    except Exception as e:  # a tool bug must not kill the rollout; it is recorded instead
        return ToolResult(text=f"tool `{call.name}` failed: {type(e).__name__}: {e}", error=True)


def _feedback_messages(turn: Turn, errors: list[str]) -> list[Message]:
    messages = [
        Message(role="tool", content=result.text, tool_call_id=call.id, name=call.name)
        for call, result in zip(turn.tool_calls, turn.tool_results, strict=True)
    ]
    if errors:
        text = "Some tool calls were not run:\n" + "\n".join(f"- {e}" for e in errors)
        messages.append(Message(role="tool", content=text, name="error"))
    return messages


_SEPARATOR_ROW = re.compile(r"^[|\-: ]*$")


def looped_table(text: str) -> str | None:
    """A cut `text` whose table lines (header or rows) repeat, each table line kept once, the
    cut last line dropped and the markdown fence closed; None when no table line repeats."""
    lines = text.split("\n")[:-1]
    seen: set[str] = set()
    kept: list[str] = []
    for line in lines:
        row = line.strip()
        if row.startswith("|") and not _SEPARATOR_ROW.match(row):
            if row in seen:
                continue
            seen.add(row)
        kept.append(line)
    if len(kept) == len(lines):
        return None
    answer = "\n".join(kept).rstrip()
    return answer + "\n```" if answer.count("```") % 2 else answer


def _best_answer_so_far(agent: AgentRun) -> str | None:
    """The latest non-empty text the agent wrote outside thinking and tool calls."""
    for turn in reversed(agent.turns):
        content = parse_tool_calls(turn.response_text).content
        if content:
            return content
    return None
