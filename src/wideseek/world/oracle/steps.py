"""Policies as generators: the building blocks the oracle's agents are written with.

Contract. A step routine is a generator that yields the tool calls of one turn (`list[Call]`),
receives the texts of their results (`list[str]`, same order) and finally returns what it
found. Written this way a policy reads as straight-line code ("search, pick the hit, open it,
read it") while the engine, which only ever sees a conversation, can rebuild the policy's state
by replaying the results already in the conversation (see `oracle.engine.replay`). Routines compose:
`yield from` runs one inside another; `parallel` interleaves several, packing their calls into
turns of at most `capacity` calls, as an agent does when it looks up several entities at once.

Also here: the `search` / `access` round trip that finds a page by a title rule (`find_pages`),
with one wider search when the first does not surface it. Nothing here knows tasks or columns.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from wideseek.tools.base import Page, SearchHit
from wideseek.world.oracle.text import parse_hits, parse_page

T = TypeVar("T")
WIDE_COUNT = 10  # results asked for when the default few did not hold the page


@dataclass(frozen=True)
class Call:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


Steps = Generator[list[Call], list[str], T]
Matcher = Callable[[SearchHit], bool]


def search(query: str, count: int | None = None) -> Call:
    return Call("search", {"query": query} if count is None else {"query": query, "count": count})


def access(url: str) -> Call:
    return Call("access", {"url": url})


def run_calls(calls: Sequence[Call], capacity: int) -> Steps[list[str]]:
    """Run `calls` in turns of at most `capacity`; the results in call order."""
    out: list[str] = []
    for start in range(0, len(calls), capacity):
        out += yield list(calls[start : start + capacity])
    return out


def parallel(routines: Sequence[Steps[T]], capacity: int, one_tool: bool = False) -> Steps[list[T]]:
    """Run routines side by side: each turn takes the pending calls of as many routines as fit
    in `capacity` (lowest index first, a routine's calls never split), sends each its results.
    `one_tool`: a turn holds calls of one tool only (the r1 profile batches per tool)."""
    results: list[Any] = [None] * len(routines)
    pending: dict[int, list[Call]] = {}
    for i, routine in enumerate(routines):
        try:
            pending[i] = next(routine)
        except StopIteration as done:
            results[i] = done.value
    while pending:
        batch, used = [], 0
        tool = pending[min(pending)][0].name
        for i in sorted(pending):
            size = len(pending[i])
            if batch and used + size > capacity:
                continue
            if one_tool and any(c.name != tool for c in pending[i]):
                continue
            batch.append(i)
            used += size
        outs = yield [call for i in batch for call in pending[i]]
        pos = 0
        for i in batch:
            size = len(pending[i])
            part, pos = outs[pos : pos + size], pos + size
            try:
                pending[i] = routines[i].send(part)
            except StopIteration as done:
                results[i] = done.value
                del pending[i]
    return results


def fold(text: str) -> str:
    """Case and accents folded: "Bogotá" and "bogota" compare equal."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def first_match(hits: Sequence[SearchHit], matcher: Matcher) -> SearchHit | None:
    return next((h for h in hits if matcher(h)), None)


@dataclass(frozen=True)
class Want:
    """A page to find: the query, how to recognise the page among hits, and the wording of
    the one wider retry (the same query when None)."""

    query: str
    matcher: Matcher
    wider: str | None = None


def find_hits(
    wanted: Sequence[Want], capacity: int, lazy: bool = False
) -> Steps[list[SearchHit | None]]:
    """The first hit each `Want`'s matcher accepts. Each query is searched with the default
    number of results, and a page still missing once more with `WIDE_COUNT` results.

    `lazy`: search the first query alone and look for the other pages in its results before
    searching for them (a country's codes page often ranks under its profile)."""
    found: list[SearchHit | None] = [None] * len(wanted)
    seen: list[SearchHit] = []

    def settle() -> list[int]:
        for i, want in enumerate(wanted):
            found[i] = found[i] or first_match(seen, want.matcher)
        return [i for i, hit in enumerate(found) if hit is None]

    rounds = [[0], range(1, len(wanted))] if lazy else [range(len(wanted))]
    missing = list(range(len(wanted)))
    for todo in rounds:
        calls = [search(wanted[i].query) for i in todo if i in missing]
        seen += [h for text in (yield from run_calls(calls, capacity)) for h in parse_hits(text)]
        missing = settle()
    if missing:
        calls = [search(wanted[i].wider or wanted[i].query, WIDE_COUNT) for i in missing]
        seen += [h for text in (yield from run_calls(calls, capacity)) for h in parse_hits(text)]
        settle()
    return found


def open_pages(urls: Sequence[str | None], capacity: int) -> Steps[list[Page | None]]:
    """Access each URL (None stays None)."""
    todo = [u for u in urls if u]
    texts = yield from run_calls([access(u) for u in todo], capacity)
    seen = dict(zip(todo, (parse_page(t) for t in texts), strict=True))
    return [seen.get(u) if u else None for u in urls]


def find_pages(
    wanted: Sequence[Want], capacity: int, lazy: bool = False
) -> Steps[list[Page | None]]:
    """Search, pick by title rule, open: the page behind each `Want`."""
    hits = yield from find_hits(wanted, capacity, lazy)
    return (yield from open_pages([h.url if h else None for h in hits], capacity))
