"""The plain data of wideseek: tasks, messages, tool calls, turns, agent runs, trajectories.

Everything here is a pydantic model so that a Trajectory is written as JSON and read back
losslessly (`Trajectory.model_validate_json(t.model_dump_json()) == t`). This module knows no
engine, no tool and no scorer; every other layer imports it.

Token storage is incremental: a Turn keeps only the prompt tokens *added* to the agent's context
since its previous turn (the whole prompt for turn 0, the rendered tool response afterwards),
plus its own response tokens. `AgentRun.prompt_token_ids(k)` rebuilds the exact prompt of turn k,
so the trainer gets every per-turn sample without the quadratic cost of storing each prefix.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from wideseek.errors import DataError
from wideseek.io import append_jsonl_line, atomic_writer, iter_jsonl

Role = Literal["lead", "subagent", "single"]
MessageRole = Literal["system", "user", "assistant", "tool"]
TaskKind = Literal["wide", "qa"]
QA_METRICS = ("em", "f1")  # the `scores` a QA task's scorer gives


def headline_metric(kind: TaskKind, qa_metric: str = "em") -> str:
    """The key of the score in `Trajectory.scores` that stands for a task's outcome: item F1
    for a wide task, EM (or `qa_metric`: em | f1) for a QA one. A trajectory's default reward,
    the benchmark's progress line and RL's outcome term all take it from here."""
    if qa_metric not in QA_METRICS:
        raise ValueError(f"qa_metric must be one of {', '.join(QA_METRICS)}, not {qa_metric!r}")
    return qa_metric if kind == "qa" else "item_f1"


class Failure(StrEnum):
    """Why an agent (or a turn) ended badly. Recorded, never raised."""

    CONTEXT_OVERFLOW = "context_overflow"  # prompt + response would exceed the context length
    TURN_LIMIT = "turn_limit"  # used every turn without a tool-free final answer
    MALFORMED_CALL = "malformed_call"  # unparsable / unknown / invalid tool call
    TOO_MANY_CALLS = "too_many_calls"  # more calls or items than the per-turn limit; extras dropped
    ENGINE_ERROR = "engine_error"  # the engine raised (server down, timeout after retries)
    TOOL_ERROR = "tool_error"  # a tool returned an error result
    SUBAGENT_FAILED = "subagent_failed"  # a subagent of this lead ended with a failure
    NO_ANSWER = "no_answer"  # the final message holds no answer in the required format
    REPEATED_CALL = "repeated_call"  # every call of the turn repeats one the agent made before
    STUCK = "stuck"  # max_repeated_turns repeating turns in a row: the agent was stopped
    # a response cut by its cap while writing table rows it had written already: the answer is
    # its table with each row once (more room would only repeat more)
    LOOPED_TABLE = "looped_table"


# Failures of one turn, after which the agent went on; they are kept on the Turn. The others end
# the agent (or judge its answer) and are kept on the AgentRun.
TURN_FAILURES = frozenset(
    {
        Failure.MALFORMED_CALL,
        Failure.TOO_MANY_CALLS,
        Failure.TOOL_ERROR,
        Failure.REPEATED_CALL,
        Failure.LOOPED_TABLE,
    }
)


class Task(BaseModel):
    """One question. Wide tasks follow the WideSearch record; QA tasks carry `golden_answers`."""

    id: str
    question: str
    kind: TaskKind = "wide"
    language: str = "en"
    # WideSearch `evaluation` object (unique_columns, required, eval_pipeline), parsed.
    evaluation: dict[str, Any] | None = None
    golden_answers: list[str] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class ToolCall(BaseModel):
    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolResult(BaseModel):
    """What a tool gives back: `text` for the model, `data` for traces, `error` when it failed."""

    text: str
    data: Any = None
    error: bool = False


class Message(BaseModel):
    role: MessageRole
    content: str = ""
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI chat-completions shape of this message."""
        if self.role == "tool" and self.tool_call_id is None:
            # Feedback on a call that could not be parsed has no call id; OpenAI-style servers
            # reject such a tool message, so it travels as a user turn in the same wrapping.
            return {"role": "user", "content": f"<tool_response>\n{self.content}\n</tool_response>"}
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                }
                for c in self.tool_calls
            ]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            out["name"] = self.name
        return out


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


class Turn(BaseModel):
    """One generation of one agent, and the tool calls it made."""

    index: int
    # Number of messages of AgentRun.messages this turn saw as its prompt.
    n_context_messages: int
    added_prompt_token_ids: list[int] | None = None  # see module docstring
    response_text: str = ""
    response_token_ids: list[int] | None = None
    response_logprobs: list[float] | None = None
    finish_reason: str = "stop"
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_results: list[ToolResult] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)  # parse / validation errors shown to the model
    failures: list[Failure] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    started_at: float = 0.0
    generate_s: float = 0.0
    tools_s: float = 0.0


class AgentRun(BaseModel):
    """Everything one agent did, in its own isolated context."""

    agent_id: int
    role: Role
    parent_id: int | None = None
    prompt: str  # the task (lead / single) or subtask (subagent) it was given
    messages: list[Message] = Field(default_factory=list)  # its full context, in order
    tool_schemas: list[dict[str, Any]] = Field(default_factory=list)  # the tools it was given
    turns: list[Turn] = Field(default_factory=list)
    answer: str | None = None  # final text: the report (subagent) or answer (lead / single)
    failures: list[Failure] = Field(default_factory=list)
    started_at: float = 0.0
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        hard = {Failure.CONTEXT_OVERFLOW, Failure.TURN_LIMIT, Failure.ENGINE_ERROR, Failure.STUCK}
        return not hard.intersection(self.failures)

    def prompt_token_ids(self, turn_index: int) -> list[int] | None:
        """The exact prompt token ids of turn `turn_index` (None when the engine gave no ids)."""
        ids: list[int] = []
        for turn in self.turns[: turn_index + 1]:
            if turn.added_prompt_token_ids is None:
                return None
            ids.extend(turn.added_prompt_token_ids)
            if turn.index < turn_index:
                ids.extend(turn.response_token_ids or [])
        return ids


class Trajectory(BaseModel):
    """The complete record of one task run: every agent, every turn, the answer, the reward."""

    task: Task
    mode: Literal["multi", "single"]
    profile: str = "wideseek"
    model: str = ""
    agents: list[AgentRun] = Field(default_factory=list)
    final_answer: str | None = None
    reward: float | None = None
    scores: dict[str, Any] = Field(default_factory=dict)
    trial: int = 0
    seed: int | None = None
    started_at: float = Field(default_factory=time.time)
    duration_s: float = 0.0
    error: str | None = None  # set when the run itself broke (never for a model's mistakes)

    @property
    def lead(self) -> AgentRun | None:
        return self.agents[0] if self.agents else None

    @property
    def subagents(self) -> list[AgentRun]:
        return [a for a in self.agents if a.role == "subagent"]

    def usage(self) -> Usage:
        total = Usage()
        for agent in self.agents:
            for turn in agent.turns:
                total = total + turn.usage
        return total

    def failure_counts(self) -> dict[str, int]:
        """How often each failure happened: per agent for the ones that end an agent, per turn
        for TURN_FAILURES (a malformed call in 3 turns counts 3)."""
        counts: dict[str, int] = {}
        for agent in self.agents:
            turn_failures = [f for t in agent.turns for f in t.failures if f in TURN_FAILURES]
            for f in [*agent.failures, *turn_failures]:
                counts[f.value] = counts.get(f.value, 0) + 1
        return counts

    def iter_turns(self) -> Iterator[tuple[AgentRun, Turn]]:
        for agent in self.agents:
            for turn in agent.turns:
                yield agent, turn


def write_trajectories(path: str | Path, trajectories: Iterable[Trajectory]) -> None:
    """Write trajectories as JSON lines, atomically (temp file + rename)."""
    with atomic_writer(path) as f:
        for t in trajectories:
            f.write(t.model_dump_json() + "\n")


def append_trajectory(path: str | Path, trajectory: Trajectory) -> None:
    """Append one trajectory as a single line, flushed to disk (resumable runs)."""
    append_jsonl_line(path, trajectory.model_dump_json())


def iter_trajectories(path: str | Path) -> Iterator[Trajectory]:
    """Stream the trajectories of a JSON-lines file, or of one pretty-printed JSON object
    (`jq . trajectory.json`).

    A torn last line (a run killed mid-append) is skipped; any other bad line raises
    `DataError` naming the file and line.
    """
    path = Path(path)
    lines = iter_jsonl(path)
    try:
        first = next(lines, None)
    except DataError as not_jsonl:
        yield _one_indented_trajectory(path, not_jsonl)
        return
    if first is None:
        return
    for line_no, record in itertools.chain([first], lines):
        try:
            yield Trajectory.model_validate(record)
        except ValidationError as e:
            where = ".".join(str(k) for k in e.errors()[0]["loc"]) or "top level"
            raise DataError(
                f"{path}:{line_no}: not a trajectory ({where}: {e.errors()[0]['msg']})"
            ) from e


def _one_indented_trajectory(path: Path, first_line_error: DataError) -> Trajectory:
    """The whole file as one JSON object; else the first line's error (how a JSON-lines file
    usually breaks, so the more useful message)."""
    try:
        return Trajectory.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError:
        raise first_line_error from first_line_error.__cause__


def read_trajectories(path: str | Path) -> list[Trajectory]:
    """All of `iter_trajectories(path)`."""
    return list(iter_trajectories(path))
