"""System prompts and user messages for each role, in this project's own words.

Prompts are short on purpose: the embedded default model is small and every prompt token
costs context and compute. Every tool profile shares the texts; they differ only in tool names,
which are filled in from the profile, and in whether a subagent also sees the main task.

The wording lives only here: `question_of`, `subtask_of` and `without_turn_hint` read back what
the messages above wrap around a task (the world's oracle recognises its tasks with them).
"""

from __future__ import annotations

import re

from wideseek.types import Task

_TURNS_LEFT = re.compile(r"\n\nYou have \d+ turns\.$")
_MAIN_TASK = re.compile(r"^Main task: .*?\n\nYour subtask: ", re.S)
_TURN_HINT = re.compile(r"\n\[(?:\d+ turns left|last turn: [^\]]*)\]$")

WIDE_ANSWER_FORMAT = (
    "Give the final answer as one markdown table in a ```markdown fenced block, with exactly "
    "the columns the task names, one row per entity."
)
QA_ANSWER_FORMAT = "Give the final answer as a short phrase inside \\boxed{}."


def answer_format(task: Task) -> str:
    return WIDE_ANSWER_FORMAT if task.kind == "wide" else QA_ANSWER_FORMAT


def lead_system(task: Task, delegate_tool: str, max_subagents: int) -> str:
    return (
        "You lead a research team and cannot search yourself. Split the task into independent "
        f"subtasks and give them to subagents with `{delegate_tool}` (at most {max_subagents} "
        "per call); they work in parallel and each returns a report. Make each subtask "
        "self-contained: name the entities and the exact facts to find. Check the reports, "
        "delegate again for anything missing, then answer without a tool call. "
        + answer_format(task)
    )


def subagent_system(max_tool_calls: int) -> str:
    return (
        "You are a research subagent. Find pages with `search` and read them with `access`; "
        f"only open URLs that a search returned. Use up to {max_tool_calls} tool calls per turn. "
        "Report only facts you read on a page. When done, reply without a tool call: a short "
        "report with each value found, its source URL, and what you could not find."
    )


def single_system(task: Task, max_tool_calls: int) -> str:
    return (
        "You are a research agent. Find pages with `search` and read them with `access`; only "
        f"open URLs that a search returned. Use up to {max_tool_calls} tool calls per turn. "
        "Use only facts you read on a page. When you have everything, answer without a tool "
        "call. " + answer_format(task)
    )


def task_message(task: Task, max_turns: int | None) -> str:
    text = f"Task: {task.question}"
    return text + (f"\n\nYou have {max_turns} turns." if max_turns else "")


def subtask_message(
    task: Task, subtask: str, include_main_task: bool, max_turns: int | None
) -> str:
    text = (
        f"Main task: {task.question}\n\nYour subtask: {subtask}" if include_main_task else subtask
    )
    return text + (f"\n\nYou have {max_turns} turns." if max_turns else "")


def question_of(message: str) -> str:
    """The task question inside a `task_message`."""
    return _TURNS_LEFT.sub("", message).removeprefix("Task: ").strip()


def subtask_of(message: str) -> str:
    """The subtask inside a `subtask_message` (with or without the main task)."""
    return _MAIN_TASK.sub("", _TURNS_LEFT.sub("", message))


def without_turn_hint(text: str) -> str:
    """A tool result without the `turns_left_hint` the loop appends to a turn's last one."""
    return _TURN_HINT.sub("", text)


def turns_left_hint(turns_left: int) -> str:
    if turns_left <= 1:
        return "[last turn: answer now, without a tool call]"
    return f"[{turns_left} turns left]"


def subagent_report(index: int, subtask: str, report: str | None, ok: bool) -> str:
    head = f"## Subagent {index}: {subtask}\n"
    if ok and report:
        return head + report
    partial = f"\nPartial report: {report}" if report else ""
    return (
        head + "(failed: it ran out of turns or context; retry with a narrower subtask)" + partial
    )
