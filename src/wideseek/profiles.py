"""Tool profiles: everything that differs between the tool sets a model was trained with.

A `ToolProfile` is the one source of: the lead's delegation tool (name, argument, item shape),
the argument schemas of `search` and `access` per role, the call rules (only the first call of
a turn runs; subagents batch items into one call), and what a subagent is shown (its subtask
alone, or the main task too). The orchestrator, the search/access tools and the world's oracle
all read it; nothing recovers a profile from prompt text or schemas.

- `wideseek` (ours): scalar `search {query, count?}` / `access {url, info_to_extract?}` for
  every role; parallelism comes from several tool calls per turn.
- `wideseek-r1`: the names and schemas of the published WideSeek-R1-4B model. Subagents get
  batched `search {queries: [...]}` / `access {urls: [...]}`, `info_to_extract` is required,
  only the first call block of a turn is read, and a subagent also sees the main task.

Adding a profile is one more `ToolProfile` in `PROFILES`. This module is pure data: it sits
beside `types` and `config` at the bottom of the import graph, so that `tools`, `agents` and
`world` can all read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

SearchRole = Literal["subagent", "single"]

MAX_RESULTS = 10  # results per query, whatever `count` asks (the r1 schema says "less than 10")

# No minLength etc.: the r1 profile must show the published schemas; blanks are checked at run.
_QUERY = {"type": "string", "description": "What to search for."}
_URL = {"type": "string", "description": "Full URL of a page, as returned by search."}
_INFO = {
    "type": "string",
    "description": "What you want from the page; the answer is focused on it.",
}


def _obj(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


@dataclass(frozen=True)
class ToolProfile:
    name: str
    delegate_tool: str  # the lead's only tool
    delegate_key: str  # its one argument: the list of subtasks
    subtasks_wrapped: bool  # items are {"prompt": text} rather than bare strings
    bounded_count: bool  # `count` carries minimum/maximum in its schema
    access_needs_info: bool  # `info_to_extract` is a required argument of `access`
    subagent_batches: bool  # a subagent's search/access take a list of items per call
    first_call_only: bool  # only the first tool call of a turn runs
    subagent_sees_main_task: bool  # a subtask message repeats the lead's task

    # -- the lead's delegation tool -----------------------------------------------------------

    def delegate_parameters(self) -> dict[str, Any]:
        if self.subtasks_wrapped:  # the published schema has no bounds
            item: dict[str, Any] = _obj({"prompt": {"type": "string"}}, ["prompt"])
            array: dict[str, Any] = {"type": "array", "items": item}
        else:
            item = {"type": "string", "minLength": 1, "description": "a self-contained subtask"}
            array = {"type": "array", "items": item, "minItems": 1}
        return _obj({self.delegate_key: array}, [self.delegate_key])

    def delegate_arguments(self, subtasks: list[str]) -> dict[str, Any]:
        """The arguments of a delegation call that hands out `subtasks`."""
        items = [{"prompt": s} for s in subtasks] if self.subtasks_wrapped else subtasks
        return {self.delegate_key: items}

    def subtasks_of(self, arguments: dict[str, Any]) -> list[str]:
        """The non-blank subtasks of (schema-valid) delegation-call arguments."""
        items = arguments[self.delegate_key]
        texts = (i["prompt"] if isinstance(i, dict) else i for i in items)
        return [t for t in texts if t.strip()]

    # -- search and access --------------------------------------------------------------------

    def batched(self, role: SearchRole) -> bool:
        return self.subagent_batches and role == "subagent"

    def max_calls_per_turn(self, role: str, max_tool_calls: int) -> int:
        """Tool calls of one turn that run: the lead delegates once per turn."""
        if role == "lead" or self.first_call_only:
            return 1
        return max_tool_calls

    def items_per_turn(self, role: SearchRole, max_tool_calls: int) -> int:
        """Searches or page reads one turn can make: calls per turn, or items per batched call."""
        if self.batched(role):
            return max_tool_calls
        return self.max_calls_per_turn(role, max_tool_calls)

    def search_parameters(self, role: SearchRole, top_k: int) -> dict[str, Any]:
        count: dict[str, Any] = {
            "type": "integer",
            "description": f"How many results to return (default {top_k}, at most {MAX_RESULTS}).",
            "default": top_k,
        }
        if self.bounded_count:
            count |= {"minimum": 1, "maximum": MAX_RESULTS}
        query = _obj({"query": _QUERY, "count": count}, ["query"])
        if self.batched(role):
            return _obj({"queries": {"type": "array", "items": query}}, ["queries"])
        return query

    def access_parameters(self, role: SearchRole) -> dict[str, Any]:
        required = ["url", "info_to_extract"] if self.access_needs_info else ["url"]
        page = _obj({"url": _URL, "info_to_extract": _INFO}, required)
        if self.batched(role):
            return _obj({"urls": {"type": "array", "items": page}}, ["urls"])
        return page


WIDESEEK = ToolProfile(
    name="wideseek",
    delegate_tool="create_subagents",
    delegate_key="subtasks",
    subtasks_wrapped=False,
    bounded_count=True,
    access_needs_info=False,
    subagent_batches=False,
    first_call_only=False,
    subagent_sees_main_task=False,
)
WIDESEEK_R1 = ToolProfile(
    name="wideseek-r1",
    delegate_tool="create_sub_agents",
    delegate_key="sub_agents",
    subtasks_wrapped=True,
    bounded_count=False,
    access_needs_info=True,
    subagent_batches=True,
    first_call_only=True,
    subagent_sees_main_task=True,
)
PROFILES: dict[str, ToolProfile] = {p.name: p for p in (WIDESEEK, WIDESEEK_R1)}


def get_profile(name: str) -> ToolProfile:
    """The profile called `name`; a ValueError listing the known ones otherwise (config
    validation turns it into a ConfigError)."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(PROFILES)
        raise ValueError(f"unknown tool profile {name!r} (known: {known})") from None
