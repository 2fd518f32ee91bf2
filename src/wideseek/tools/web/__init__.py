"""Web search and page access for the `search` / `access` tools: real APIs, cached, guarded.

    from wideseek.tools.web import WebToolsConfig, open_web_backend, check_backends
    backend = open_web_backend(WebToolsConfig(search="serper", access="jina"))
    hits = await backend.search("capital of Norway", 5)   # WebHits: list[SearchHit] + .audit
    page = await backend.access(hits[0].url)              # Page, audit in page.meta["audit"]
    lines = await check_backends(cfg)                     # [(name, ok, one line), ...]

Search: Serper, Brave, Tavily, SearXNG. Access: Jina Reader, or direct fetch (SSRF-guarded,
size- and time-limited, HTML/PDF to text). Shared: SQLite cache with TTL and replay, per-backend
rate limits and concurrency caps, retries (tenacity). Any failure is a `WebToolError` with a
one-line message and an `.audit`. Keys come from environment variables named in the config and
never appear in messages, reprs, logs or audit records. Module map: config (the knobs),
backend (assembly, cache/replay/audit), search_apis, page_readers, page_text (bytes → text),
ssrf_guard, throttled_http (limits and retries), cache, fetched (result and audit shapes).

The names below load on first use (PEP 562), so `wideseek.config` can import
`wideseek.tools.web.config` (pydantic only) without pulling httpx and the tools in: the config
stays at the bottom of the import graph.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wideseek.tools.web.backend import WebBackend, check_backends, open_web_backend
    from wideseek.tools.web.config import WebToolsConfig
    from wideseek.tools.web.errors import BlockedUrlError, WebToolError
    from wideseek.tools.web.fetched import WebHits, audit_of

_HOMES = {
    "BlockedUrlError": "errors",
    "WebBackend": "backend",
    "WebHits": "fetched",
    "WebToolError": "errors",
    "WebToolsConfig": "config",
    "audit_of": "fetched",
    "check_backends": "backend",
    "open_web_backend": "backend",
}
__all__ = [
    "BlockedUrlError",
    "WebBackend",
    "WebHits",
    "WebToolError",
    "WebToolsConfig",
    "audit_of",
    "check_backends",
    "open_web_backend",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
