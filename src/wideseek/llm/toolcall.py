"""Qwen3 / Hermes tool-call text format: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`.

`parse_tool_calls(text)` finds every block in an assistant message (after any `<think>` part)
and returns the calls it could read plus one error line per block it could not: bad JSON, a
missing name, arguments that are not an object, an unclosed tag. The agent loop sends those
errors back to the model on its next turn and counts them as failures; nothing here raises.

`split_thinking` and `format_tool_call` are the other two directions of the same format.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field

from wideseek.types import ToolCall

OPEN, CLOSE = "<tool_call>", "</tool_call>"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
_BLOCK = re.compile(r"<tool_call>(.*?)(</tool_call>|$)", re.DOTALL)


@dataclass
class ParsedMessage:
    thinking: str  # text inside <think>...</think>, if any
    content: str  # text outside thinking and tool-call blocks, stripped
    calls: list[ToolCall] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def split_thinking(text: str) -> tuple[str, str]:
    """(thinking, rest): everything up to the last `</think>` is thinking.

    Qwen3 chat templates put `<think>` into the generation prompt, so a response may hold only the
    closing tag; both shapes are handled.
    """
    if THINK_CLOSE not in text:
        return "", text
    head, _, rest = text.rpartition(THINK_CLOSE)
    return head.replace(THINK_OPEN, "").strip(), rest


def parse_tool_calls(text: str, id_prefix: str = "call") -> ParsedMessage:
    thinking, rest = split_thinking(text)
    calls: list[ToolCall] = []
    errors: list[str] = []
    for n, match in enumerate(_BLOCK.finditer(rest)):
        body, close = match.group(1).strip(), match.group(2)
        label = f"tool call #{n + 1}"
        if not close:
            errors.append(f"{label}: missing {CLOSE}")
            continue
        try:
            obj = json.loads(body)
        except json.JSONDecodeError as e:
            errors.append(f"{label}: invalid JSON ({e.msg} at char {e.pos})")
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str) or not obj["name"]:
            errors.append(f'{label}: expected {{"name": "...", "arguments": {{...}}}}')
            continue
        args = obj.get("arguments", {})
        if isinstance(args, str):  # some models double-encode the arguments
            with contextlib.suppress(json.JSONDecodeError):
                args = json.loads(args)
        if not isinstance(args, dict):
            errors.append(f"{label}: `arguments` of `{obj['name']}` must be a JSON object")
            continue
        calls.append(ToolCall(id=f"{id_prefix}_{n}", name=obj["name"], arguments=args))
    content = _BLOCK.sub("", rest).strip()
    return ParsedMessage(thinking=thinking, content=content, calls=calls, errors=errors)


def format_tool_call(name: str, arguments: dict) -> str:
    """One call in the text format models are trained on (compact JSON, non-ASCII kept)."""
    body = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    return f"{OPEN}\n{body}\n{CLOSE}"
