"""Web search and page access for the `search` / `access` tools: real APIs, cached, guarded.

    from wideseek.tools.web import WebToolsConfig, open_web_backend, check_backends
    backend = open_web_backend(WebToolsConfig(search="serper", access="jina"))
    hits = await backend.search("capital of Norway", 5)   # WebHits: list[SearchHit] + .audit
    page = await backend.access(hits[0].url)              # Page, audit in page.meta["audit"]
    lines = await check_backends(cfg)                     # [(name, ok, one line), ...]

Search: Serper, Brave, Tavily, SearXNG. Access: Jina Reader, or direct fetch (SSRF-guarded,
size- and time-limited, HTML/PDF to text). Shared: SQLite cache with TTL and replay, per-backend
rate limits and concurrency caps, retries (`wideseek.http_retry`). Any failure is a
`WebToolError` with a one-line message and an `.audit`. Keys come from environment variables
named in the config and never appear in messages, reprs, logs or audit records. Module map:
backend (assembly, cache/replay/audit), search_apis, page_readers, page_text (bytes → text),
ssrf_guard, throttled_http (limits and retries), cache, fetched (result and audit shapes). The
settings (`WebToolsConfig`) and the allow-list syntax live in the bottom layer, beside the
config they are part of: `wideseek.web_config`, `wideseek.web_allow_list`. The optional
parsers (trafilatura, pypdf, charset-normalizer) load when a page first needs them.
"""

from __future__ import annotations

from wideseek.tools.web.backend import WebBackend, check_backends, open_web_backend
from wideseek.tools.web.errors import BlockedUrlError, WebToolError
from wideseek.tools.web.fetched import WebHits, audit_of
from wideseek.web_config import WebToolsConfig

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
