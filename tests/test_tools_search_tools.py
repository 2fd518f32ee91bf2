"""search/access front ends: schemas of both profiles, validation, formatting, batching."""

from __future__ import annotations

import asyncio

import pytest

from wideseek.config import ToolsConfig
from wideseek.tools.base import Page, SearchHit, tool_schema
from wideseek.tools.search_tools import MAX_RESULTS, make_tools


class FakeBackend:
    """Pages keyed by URL; a query hits every page whose title word it contains."""

    def __init__(self, pages: list[Page], barrier: int = 0) -> None:
        self.pages = {p.url: p for p in pages}
        self.calls: list[tuple[str, object]] = []
        # With a barrier of n, each call waits until n calls are in flight at once: a tool that
        # ran items one by one would never get there (and the test's wait_for would fail).
        self.barrier = barrier
        self.in_flight = 0
        self.all_started = asyncio.Event()

    async def _gate(self) -> None:
        if self.barrier:
            self.in_flight += 1
            if self.in_flight >= self.barrier:
                self.all_started.set()
            await self.all_started.wait()

    async def search(self, query: str, k: int) -> list[SearchHit]:
        self.calls.append(("search", (query, k)))
        await self._gate()
        if query == "boom":
            raise RuntimeError("index offline")
        hits = [
            SearchHit(url=p.url, title=p.title, snippet=p.text, score=1.0)
            for p in self.pages.values()
            if p.title.lower() in query.lower()
        ]
        return hits[:k]

    async def access(self, url: str) -> Page | None:
        self.calls.append(("access", url))
        await self._gate()
        return self.pages.get(url)


PAGES = [
    Page(url=f"https://x.org/{name}", title=name, text=f"{name} is a city. " * 20)
    for name in ["Paris", "Berlin", "Rome", "Madrid", "Vienna", "Lisbon", "Prague"]
]
CONFIG = ToolsConfig(snippet_chars=60, page_chars=100, search_top_k=3)


def tools(profile: str, role: str, backend: FakeBackend | None = None, **kw):
    search, access = make_tools(profile, role, backend or FakeBackend(PAGES), CONFIG, **kw)
    assert (search.name, access.name) == ("search", "access")
    return search, access


def test_r1_profile_matches_the_published_schemas() -> None:
    search, access = tools("wideseek-r1", "subagent")
    s = tool_schema(search)["function"]["parameters"]
    assert s["required"] == ["queries"] and s["properties"]["queries"]["type"] == "array"
    item = s["properties"]["queries"]["items"]
    assert item["required"] == ["query"]
    assert {k: v["type"] for k, v in item["properties"].items()} == {
        "query": "string",
        "count": "integer",
    }
    a = tool_schema(access)["function"]["parameters"]
    assert a["required"] == ["urls"]
    item = a["properties"]["urls"]["items"]
    assert item["required"] == ["url", "info_to_extract"]
    assert set(item["properties"]) == {"url", "info_to_extract"}
    single_search, single_access = tools("wideseek-r1", "single")
    assert single_search.parameters["required"] == ["query"]
    assert set(single_search.parameters["properties"]) == {"query", "count"}
    assert single_access.parameters["required"] == ["url", "info_to_extract"]


def test_wideseek_profile_is_scalar_for_both_roles() -> None:
    for role in ("subagent", "single"):
        search, access = tools("wideseek", role)
        assert search.parameters["required"] == ["query"]
        assert access.parameters["required"] == ["url"]


def test_lead_and_unknown_profile_are_refused() -> None:
    with pytest.raises(ValueError, match="lead"):
        make_tools("wideseek", "lead", FakeBackend(PAGES), CONFIG)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="profile"):
        make_tools("other", "single", FakeBackend(PAGES), CONFIG)  # type: ignore[arg-type]


BAD_ARGUMENTS = [
    ("wideseek", "single", 0, {}, "query"),
    ("wideseek", "single", 0, {"query": 3}, "query"),
    ("wideseek", "single", 0, {"query": "x", "count": 11}, "count"),
    ("wideseek", "subagent", 0, {"query": "x", "count": 0}, "count"),
    ("wideseek", "single", 1, {"info_to_extract": "y"}, "url"),
    ("wideseek", "subagent", 1, {"url": ["a"]}, "url"),
    ("wideseek-r1", "subagent", 0, {"query": "x"}, "queries"),
    ("wideseek-r1", "subagent", 0, {"queries": "x"}, "queries"),
    ("wideseek-r1", "subagent", 0, {"queries": [{"count": 2}]}, "queries/0"),
    ("wideseek-r1", "subagent", 0, {"queries": [{"query": "x", "count": "2"}]}, "count"),
    ("wideseek-r1", "subagent", 1, {"urls": [{"url": "u"}]}, "urls/0"),
    ("wideseek-r1", "subagent", 1, {"url": "u", "info_to_extract": "y"}, "urls"),
    ("wideseek-r1", "single", 0, {"queries": [{"query": "x"}]}, "query"),
    ("wideseek-r1", "single", 1, {"url": "u"}, "info_to_extract"),
]


@pytest.mark.parametrize(("profile", "role", "which", "arguments", "where"), BAD_ARGUMENTS)
async def test_bad_arguments_are_an_error_result(profile, role, which, arguments, where) -> None:
    backend = FakeBackend(PAGES)
    tool = tools(profile, role, backend)[which]
    result = await tool.call(arguments)
    assert result.error
    assert result.text.startswith(f"invalid arguments for `{tool.name}`")
    assert where in result.text
    assert backend.calls == []


async def test_blank_query_or_url_is_an_error_result() -> None:
    search, access = tools("wideseek", "single")
    assert (await search.call({"query": "  "})).error
    assert (await access.call({"url": ""})).error


async def test_search_lists_numbered_hits_with_cut_snippets() -> None:
    search, _ = tools("wideseek", "single")
    result = await search.call({"query": "Paris and Rome"})
    assert not result.error
    assert "## Search results for: Paris and Rome" in result.text
    assert "[1] Paris\nURL: https://x.org/Paris" in result.text
    assert "[2] Rome\nURL: https://x.org/Rome" in result.text
    assert "[cut: 60 of" in result.text
    assert [h["url"] for h in result.data["hits"]] == ["https://x.org/Paris", "https://x.org/Rome"]


async def test_search_count_defaults_to_top_k_and_is_clamped() -> None:
    backend = FakeBackend(PAGES)
    search, _ = tools("wideseek-r1", "subagent", backend)
    await search.call({"queries": [{"query": "a"}, {"query": "b", "count": 50}]})
    assert sorted(k for kind, (_, k) in backend.calls if kind == "search") == [3, MAX_RESULTS]


async def test_search_without_hits_says_so() -> None:
    search, _ = tools("wideseek", "single")
    result = await search.call({"query": "Atlantis"})
    assert not result.error and "No results found" in result.text


async def test_backend_failure_is_an_error_result() -> None:
    search, _ = tools("wideseek", "single")
    result = await search.call({"query": "boom"})
    assert result.error and "Search failed: index offline" in result.text


async def test_access_shows_the_page_cut_to_page_chars_or_not_found() -> None:
    _, access = tools("wideseek", "subagent")
    result = await access.call({"url": "https://x.org/Berlin"})
    assert not result.error
    assert result.text.startswith("## Page: https://x.org/Berlin\nTitle: Berlin\n")
    assert "[cut: 100 of" in result.text
    assert result.data["page"]["title"] == "Berlin"
    missing = await access.call({"url": "https://x.org/Atlantis"})
    assert not missing.error and "Not found" in missing.text and missing.data["page"] is None


async def test_extractor_summarises_when_info_is_given_and_keeps_the_raw_page() -> None:
    seen: list[tuple[str, str]] = []

    async def extractor(text: str, info: str) -> str:
        seen.append((text, info))
        return f"summary about {info}"

    _, access = tools("wideseek-r1", "single", extractor=extractor)
    result = await access.call({"url": "https://x.org/Rome", "info_to_extract": "population"})
    assert "summary about population" in result.text and "Rome is a city" not in result.text
    assert result.data["page"]["text"].startswith("Rome is a city")
    assert result.data["summary"] == "summary about population"
    assert len(seen[0][0]) == CONFIG.page_chars  # the extractor sees the capped page


async def test_broken_extractor_falls_back_to_the_raw_page() -> None:
    async def extractor(text: str, info: str) -> str:
        raise RuntimeError("judge down")

    _, access = tools("wideseek", "single", extractor=extractor)
    result = await access.call({"url": "https://x.org/Rome", "info_to_extract": "population"})
    assert not result.error
    assert "judge down" in result.text and "Rome is a city" in result.text


async def test_r1_batch_runs_at_most_five_items_and_says_what_it_dropped() -> None:
    backend = FakeBackend(PAGES)
    search, access = tools("wideseek-r1", "subagent", backend)
    queries = [{"query": p.title} for p in PAGES]  # 7 items
    result = await search.call({"queries": queries})
    assert not result.error
    assert len(result.data["queries"]) == 5 and result.data["dropped"] == 2
    assert result.text.count("## Search results for:") == 5
    assert "only the first 5 of 7 queries were run" in result.text
    assert "Lisbon" not in [q for kind, (q, _) in backend.calls if kind == "search"]
    urls = [{"url": p.url, "info_to_extract": "x"} for p in PAGES]
    result = await access.call({"urls": urls})
    assert result.text.count("## Page:") == 5 and result.data["dropped"] == 2


async def test_r1_batch_items_run_concurrently() -> None:
    backend = FakeBackend(PAGES, barrier=4)
    search, _ = tools("wideseek-r1", "subagent", backend)
    queries = [{"query": p.title} for p in PAGES[:4]]
    result = await asyncio.wait_for(search.call({"queries": queries}), timeout=10)
    assert len(result.data["queries"]) == 4


async def test_r1_batch_errors_only_when_every_item_failed() -> None:
    search, _ = tools("wideseek-r1", "subagent")
    partial = await search.call({"queries": [{"query": "boom"}, {"query": "Paris"}]})
    assert not partial.error and "Search failed" in partial.text and "[1] Paris" in partial.text
    failed = await search.call({"queries": [{"query": "boom"}]})
    assert failed.error
    empty = await search.call({"queries": []})
    assert empty.error and "at least one" in empty.text
