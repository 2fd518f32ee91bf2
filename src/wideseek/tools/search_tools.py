"""The `search` and `access` tools the model calls, shaped by a tool profile.

The profile (`wideseek.profiles`) gives each role's argument schemas: scalar
`search {query, count?}` / `access {url, info_to_extract?}`, or batched
`search {queries: [...]}` / `access {urls: [...]}` whose items (at most `max_items` per call; the
rest are dropped and the result says so) run concurrently.

A tool validates its arguments against its schema, asks a SearchBackend, and formats the answer
for the model: numbered hits (title, URL, snippet cut to `snippet_chars`) under a per-query
header, or a page (cut to `page_chars`). With `info_to_extract` and an `Extractor` configured,
`access` returns the extractor's focused summary instead of the raw page. Every failure —
bad arguments, a backend error, a broken extractor — is an error ToolResult, never an exception.
`ToolResult.data` keeps the structured hits/pages (and the raw page under a summary) for traces.

This module knows nothing about agents, prompts or where pages come from; its settings are the
tools' own (`ToolsConfig`). The lead agent's delegation tool belongs to the agent layer.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any

from wideseek.config import ToolsConfig
from wideseek.profiles import MAX_RESULTS, SearchRole, ToolProfile, get_profile
from wideseek.tools.base import Page, SearchBackend, SearchHit, Tool, validate_arguments
from wideseek.types import ToolResult

# (page_text, info_to_extract) -> a summary of what the page says about it.
Extractor = Callable[[str, str], Awaitable[str]]


# -- formatting ------------------------------------------------------------------------------


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[cut: {limit} of {len(text)} characters shown]"


def format_hits(query: str, hits: list[SearchHit], snippet_chars: int) -> str:
    header = f"## Search results for: {query}"
    if not hits:
        return f"{header}\nNo results found. Try other words or a broader query."
    blocks = [
        f"[{i}] {hit.title}\nURL: {hit.url}\n{_cut(hit.snippet, snippet_chars)}"
        for i, hit in enumerate(hits, 1)
    ]
    return header + "\n" + "\n\n".join(blocks)


def format_page(url: str, page: Page | None, page_chars: int) -> str:
    header = f"## Page: {url}"
    if page is None:
        return f"{header}\nNot found. Only URLs returned by search can be opened."
    if not page.text.strip():
        return f"{header}\nTitle: {page.title}\nThe page has no text."
    return f"{header}\nTitle: {page.title}\n\n{_cut(page.text, page_chars)}"


def format_summary(url: str, page: Page, info: str, summary: str) -> str:
    return f"## Page: {url}\nTitle: {page.title}\nExtracted ({info}):\n{summary}"


def _dropped_note(kind: str, kept: int, total: int) -> str:
    return (
        f"Note: only the first {kept} of {total} {kind} were run (at most {kept} per call); "
        f"call again for the rest."
    )


# -- the work behind every tool --------------------------------------------------------------


def _keep_audit(data: dict[str, Any], result: object) -> None:
    """Web backends say how a result was got (backend, cache hit, final URL, bytes) in an
    `audit` attribute of their hit list or error; traces keep it. (A page carries its own, in
    `Page.meta`.)"""
    audit = getattr(result, "audit", None)
    if isinstance(audit, dict):
        data["audit"] = audit


class _Lookups:
    """Runs one query or one URL against the backend; returns (text, data, ok). Never raises."""

    def __init__(
        self, backend: SearchBackend, config: ToolsConfig, extractor: Extractor | None
    ) -> None:
        self.backend = backend
        self.config = config
        self.extractor = extractor

    async def search(self, query: str, count: int | None) -> tuple[str, dict[str, Any], bool]:
        k = max(1, min(count if count is not None else self.config.search_top_k, MAX_RESULTS))
        data: dict[str, Any] = {"query": query, "count": k, "hits": [], "error": None}
        if not query.strip():
            data["error"] = "empty query"
            return "Search needs a non-empty query.", data, False
        try:
            hits = await self.backend.search(query, k)
        except Exception as e:  # a backend may be remote; its failure is the model's news
            data["error"] = str(e) or type(e).__name__
            _keep_audit(data, e)
            return f"## Search results for: {query}\nSearch failed: {data['error']}", data, False
        _keep_audit(data, hits)  # before slicing: a web backend's hit list carries its audit
        hits = hits[:k]
        data["hits"] = [h.model_dump() for h in hits]
        return format_hits(query, hits, self.config.snippet_chars), data, True

    async def access(self, url: str, info: str | None) -> tuple[str, dict[str, Any], bool]:
        data: dict[str, Any] = {"url": url, "info_to_extract": info, "page": None}
        data |= {"summary": None, "error": None}
        if not url.strip():
            data["error"] = "empty url"
            return "Access needs a non-empty URL.", data, False
        try:
            page = await self.backend.access(url)
        except Exception as e:
            data["error"] = str(e) or type(e).__name__
            _keep_audit(data, e)
            return f"## Page: {url}\nAccess failed: {data['error']}", data, False
        if page is None:
            return format_page(url, None, self.config.page_chars), data, True
        data["page"] = page.model_dump()
        if not (info and info.strip() and self.extractor and page.text.strip()):
            return format_page(url, page, self.config.page_chars), data, True
        try:
            summary = await self.extractor(page.text[: self.config.page_chars], info)
        except Exception as e:  # fall back to the raw page: the model still gets the facts
            data["error"] = f"extractor failed: {e}"
            note = f"(Focused extraction failed: {e}; the raw page follows.)\n"
            return note + format_page(url, page, self.config.page_chars), data, True
        data["summary"] = summary
        return format_summary(url, page, info, summary), data, True


class _FrontEnd(ABC):
    """Shared `Tool` plumbing: schema validation, then `_run` on valid arguments."""

    name: str
    description: str
    parameters: dict[str, Any]
    repeatable = False  # the same search or page again shows nothing new

    def __init__(self, lookups: _Lookups, parameters: dict[str, Any], description: str) -> None:
        self.lookups = lookups
        self.parameters = parameters
        self.description = description

    async def call(self, arguments: dict[str, Any]) -> ToolResult:
        error = validate_arguments(self, arguments)
        if error is not None:
            return ToolResult(text=error, error=True, data={"arguments": arguments})
        return await self._run(arguments)

    @abstractmethod
    async def _run(self, arguments: dict[str, Any]) -> ToolResult: ...


class SearchTool(_FrontEnd):
    name = "search"

    async def _run(self, arguments: dict[str, Any]) -> ToolResult:
        text, data, ok = await self.lookups.search(arguments["query"], arguments.get("count"))
        return ToolResult(text=text, data=data, error=not ok)


class AccessTool(_FrontEnd):
    name = "access"

    async def _run(self, arguments: dict[str, Any]) -> ToolResult:
        text, data, ok = await self.lookups.access(
            arguments["url"], arguments.get("info_to_extract")
        )
        return ToolResult(text=text, data=data, error=not ok)


class _BatchTool(_FrontEnd):
    """Runs up to `max_items` items of one call concurrently; extra items are dropped."""

    items_key: str  # "queries" or "urls"

    def __init__(
        self, lookups: _Lookups, parameters: dict[str, Any], description: str, max_items: int
    ) -> None:
        super().__init__(lookups, parameters, description)
        self.max_items = max_items

    @abstractmethod
    def _one(self, item: dict[str, Any]) -> Awaitable[tuple[str, dict[str, Any], bool]]: ...

    async def _run(self, arguments: dict[str, Any]) -> ToolResult:
        items = arguments[self.items_key]
        if not items:
            return ToolResult(
                text=f"`{self.name}` needs at least one item in {self.items_key}.",
                error=True,
                data={"arguments": arguments},
            )
        kept = items[: self.max_items]
        results = await asyncio.gather(*(self._one(item) for item in kept))
        texts = [text for text, _, _ in results]
        dropped = len(items) - len(kept)
        if dropped:
            texts.append(_dropped_note(self.items_key, len(kept), len(items)))
        data = {self.items_key: [d for _, d, _ in results], "dropped": dropped}
        # An error only when nothing worked: partial results are still useful to the model.
        return ToolResult(
            text="\n\n".join(texts), data=data, error=not any(ok for _, _, ok in results)
        )


class BatchSearchTool(_BatchTool):
    name = "search"
    items_key = "queries"

    def _one(self, item: dict[str, Any]) -> Awaitable[tuple[str, dict[str, Any], bool]]:
        return self.lookups.search(item["query"], item.get("count"))


class BatchAccessTool(_BatchTool):
    name = "access"
    items_key = "urls"

    def _one(self, item: dict[str, Any]) -> Awaitable[tuple[str, dict[str, Any], bool]]:
        return self.lookups.access(item["url"], item.get("info_to_extract"))


# -- profiles --------------------------------------------------------------------------------

_SEARCH_TEXT = "Search the web. Returns ranked pages with title, URL and a relevant snippet."
_ACCESS_TEXT = (
    "Open a page by URL (use URLs from search results). Returns the page text, or only "
    "the parts about `info_to_extract` when given."
)


def _batch_text(base: str, what: str, limit: int) -> str:
    return f"{base} Takes a list of {what} (at most {limit} per call), run in parallel."


def make_tools(
    profile: ToolProfile | str,
    role: SearchRole,
    backend: SearchBackend,
    config: ToolsConfig,
    max_items: int = 5,
    extractor: Extractor | None = None,
) -> list[Tool]:
    """The `search` and `access` tools of `role` ("subagent" or "single") in `profile`;
    `max_items` bounds the items of one batched call."""
    if role not in ("subagent", "single"):
        raise ValueError(f"no search tools for role {role!r} (the lead only delegates)")
    profile = get_profile(profile) if isinstance(profile, str) else profile
    lookups = _Lookups(backend, config, extractor)
    search = profile.search_parameters(role, config.search_top_k)
    access = profile.access_parameters(role)
    if not profile.batched(role):
        return [
            SearchTool(lookups, search, _SEARCH_TEXT),
            AccessTool(lookups, access, _ACCESS_TEXT),
        ]
    return [
        BatchSearchTool(
            lookups, search, _batch_text(_SEARCH_TEXT, "queries", max_items), max_items
        ),
        BatchAccessTool(lookups, access, _batch_text(_ACCESS_TEXT, "URLs", max_items), max_items),
    ]
