"""What one network fetch produced, and the audit record every search and access leaves.

`Fetched` is what a search API or page reader returns to `WebBackend`: the value (hits or a
page) with the facts a trace needs (HTTP status, final URL, bytes kept, attempts, and for
direct fetch the redirect chain with the addresses each hop had, which the guard re-checks
when the page is served from the cache).
`WebBackend` turns those facts, plus cache hit/miss and timing, into an audit record — a plain
JSON-ready dict:

    {"backend": "serper", "kind": "search" | "access", "request": <query or URL>,
     "cache": "hit" | "miss" | "off", "replay": bool, "status": 200 | None,
     "final_url": <URL after redirects; for search, the API endpoint>, "redirects": 0,
     "bytes": <body bytes kept>, "truncated": bool, "content_type": str | None,
     "chain": [{"url": str, "addresses": [str, ...]}, ...] | None  (direct fetch: every hop,
              first URL to final one, with the addresses checked; None for other backends),
     "attempts": <tries, on failure as on success (a try the guard refused before connecting
                  counts); 0 on a cache hit, when coalesced, or when the call failed before
                  any try (replay miss, missing key, bad URL)>,
     "elapsed_s": float,
     "coalesced": <True: joined an identical request in flight, whose facts these are>,
     "error": str | None, "error_kind": <one of errors.ERROR_KINDS> | None}

It rides on the result so the `SearchBackend` protocol stays as it is: search returns
`WebHits` (a list of SearchHit with `.audit`), access a Page with `meta["audit"]`, and a
failure a `WebToolError` with `.audit`. `audit_of` reads it from any of the three. No key is
ever part of a record.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from wideseek.tools.base import Page, SearchHit

T = TypeVar("T")
U = TypeVar("U")


@dataclass
class Fetched(Generic[T]):
    value: T
    status: int
    final_url: str
    bytes: int
    truncated: bool = False
    attempts: int = 1
    content_type: str | None = None
    redirects: int = 0
    chain: list[dict[str, Any]] | None = None  # direct fetch: [{"url", "addresses"}, ...]

    def with_value(self, value: U, **changes: Any) -> Fetched[U]:
        """This fetch's facts (and `changes` to them) around another value: the page read out
        of the bytes fetched."""
        return replace(self, value=value, **changes)  # type: ignore[return-value]

    def facts(self) -> dict[str, Any]:
        """The audit facts of this fetch (what a cache entry keeps beside the value)."""
        return {
            "status": self.status,
            "final_url": self.final_url,
            "redirects": self.redirects,
            "bytes": self.bytes,
            "truncated": self.truncated,
            "content_type": self.content_type,
            "chain": self.chain,
        }


class WebHits(list[SearchHit]):
    """Search hits in rank order, plus the audit record of the search that found them."""

    def __init__(self, hits: Iterable[SearchHit], audit: dict[str, Any]) -> None:
        super().__init__(hits)
        self.audit = audit


def audit_of(result: object) -> dict[str, Any] | None:
    """The audit record of a web search (WebHits), access (Page) or failure (WebToolError)."""
    if isinstance(result, Page):
        return (result.meta or {}).get("audit")
    audit = getattr(result, "audit", None)
    return audit if isinstance(audit, dict) else None
