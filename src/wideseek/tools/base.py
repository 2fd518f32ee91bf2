"""The Tool protocol and the search backend protocol behind `search` / `access`.

A Tool has a name, a description, a JSON schema for its arguments, whether a repeated call is
worth making (`repeatable`) and `async call(arguments)`.
Bad arguments come back as a ToolResult with `error=True` and a text the model can act on;
a tool never raises into the agent loop.

A SearchBackend is where pages come from: a BM25 index over a local JSONL corpus, the retrieval
service over HTTP, or web search APIs. The front-end tools (search/access in each tool profile)
format backend results for the model; backends know nothing about prompts.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import jsonschema
from pydantic import BaseModel

from wideseek.types import ToolResult


class SearchHit(BaseModel):
    url: str
    title: str
    snippet: str
    score: float | None = None


class Page(BaseModel):
    url: str
    title: str
    text: str
    # Facts about how the page was obtained, for traces, never shown to the model (the web
    # backends put their audit record under "audit": backend, cache hit, final URL, bytes).
    meta: dict[str, Any] | None = None


@runtime_checkable
class SearchBackend(Protocol):
    async def search(self, query: str, k: int) -> list[SearchHit]: ...

    async def access(self, url: str) -> Page | None: ...


@runtime_checkable
class Tool(Protocol):
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments object
    # True when the same call again gives something new (delegation starts new subagents): the
    # agent loop then never answers it as a repeated call. Search and access are not.
    repeatable: bool

    async def call(self, arguments: dict[str, Any]) -> ToolResult: ...


def tool_schema(tool: Tool) -> dict[str, Any]:
    """The OpenAI function-tool schema of a tool (what chat templates and servers expect)."""
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        },
    }


def validate_arguments(tool: Tool, arguments: Any) -> str | None:
    """None when `arguments` fits the tool's schema, else a one-line error for the model."""
    try:
        jsonschema.validate(arguments, tool.parameters)
    except jsonschema.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "arguments"
        return f"invalid arguments for `{tool.name}` at {where}: {e.message}"
    return None
