"""Web search APIs behind one small interface: a query and k → hits in rank order.

Each `SearchApi` knows one wire format and nothing else: how to ask (`request`) and how to
read the answer (`parse`). Sending, rate limits, retries and the byte cap are its
`ThrottledHttp`'s; caching, replay and audit are `WebBackend`'s.

- Serper (Google results): POST {base}/search, JSON {q, num}, key in X-API-KEY;
  answer `organic: [{title, link, snippet, position}]`.
- Brave Search: GET {base}/web/search?q=&count=, key in X-Subscription-Token;
  answer `web.results: [{title, url, description}]` (descriptions carry <strong> markup).
- Tavily: POST {base}/search, JSON {query, max_results, search_depth}, key as a Bearer token;
  answer `results: [{title, url, content, score}]`.
- SearXNG (self-hosted): GET {base}/search?q=&format=json (the instance must enable the json
  format); answer `results: [{title, url, content, score}]`; no key unless a proxy wants one.

Every hit becomes a `SearchHit(url, title, snippet, score)` with markup stripped; `score` is the
API's own where it gives one, else None. The key travels only in a request header.
"""

from __future__ import annotations

import html
import json
import re
from abc import ABC, abstractmethod
from typing import Any, ClassVar, NamedTuple

import httpx

from wideseek.tools.base import SearchHit
from wideseek.tools.web.errors import ApiKey, WebToolError
from wideseek.tools.web.fetched import Fetched
from wideseek.tools.web.throttled_http import ThrottledHttp, send_capped
from wideseek.web_config import ServiceSettings

_TAG = re.compile(r"<[^>]+>")


class ApiCall(NamedTuple):
    method: str
    url: str
    params: dict[str, Any] | None = None
    json: dict[str, Any] | None = None
    headers: dict[str, str] | None = None


def clean(text: Any) -> str:
    """Plain text from an API string: tags dropped, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(_TAG.sub("", str(text or ""))).split())


class SearchApi(ABC):
    name: ClassVar[str]
    max_k: ClassVar[int] = 20  # most results the API gives in one call

    def __init__(self, settings: ServiceSettings, http: ThrottledHttp, max_bytes: int) -> None:
        self.settings = settings
        self.http = http
        self.max_bytes = max_bytes
        self.base_url = settings.base_url.rstrip("/")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r}, key={self.key!r})"

    @property
    def key(self) -> ApiKey | None:
        return self.http.key

    def missing_key(self) -> str | None:
        """Why this API cannot be called now (no key in the environment), or None."""
        if self.settings.key_required and self.key is None:
            return f"no API key: set the environment variable {self.settings.key_env}"
        return None

    @abstractmethod
    def request(self, query: str, k: int) -> ApiCall: ...

    @abstractmethod
    def parse(self, payload: Any) -> list[SearchHit]: ...

    async def search(self, query: str, k: int) -> Fetched[list[SearchHit]]:
        problem = self.missing_key()
        if problem:
            raise WebToolError(f"{self.name}: {problem}", kind="missing_key")
        call = self.request(query, max(1, min(k, self.max_k)))

        async def attempt(client: httpx.AsyncClient) -> Fetched[list[SearchHit]]:
            request = client.build_request(
                call.method, call.url, params=call.params, json=call.json, headers=call.headers
            )
            response, body, truncated = await send_capped(client, request, self.max_bytes)
            if truncated:
                problem = f"answer larger than {self.max_bytes} bytes (max_bytes)"
                raise WebToolError(problem, kind="too_large")
            try:
                hits = self.parse(json.loads(body))
            except ValueError as e:
                raise WebToolError(f"answer is not JSON ({e})", kind="bad_answer") from e
            except (KeyError, TypeError, AttributeError) as e:
                problem = f"{type(e).__name__}: {e}"
                problem = f"answer has an unexpected shape ({problem})"
                raise WebToolError(problem, kind="bad_answer") from e
            return Fetched(
                value=hits[:k],
                status=response.status_code,
                final_url=call.url,
                bytes=len(body),
                content_type=response.headers.get("content-type"),
            )

        fetched, attempts = await self.http.run(attempt)
        fetched.attempts = attempts
        return fetched

    def _headers(self, key_header: str | None, bearer: bool = False) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.key is not None:
            if bearer:
                headers["Authorization"] = f"Bearer {self.key.reveal()}"
            elif key_header:
                headers[key_header] = self.key.reveal()
        return headers


def _hit(url: Any, title: Any, snippet: Any, score: Any = None) -> SearchHit:
    return SearchHit(
        url=str(url or ""),
        title=clean(title),
        snippet=clean(snippet),
        score=float(score) if isinstance(score, int | float) else None,
    )


def _scored_results(payload: Any) -> list[SearchHit]:
    """Tavily's and SearXNG's shape: `results: [{url, title, content, score}]`."""
    results = payload.get("results") or []
    return [_hit(r.get("url"), r.get("title"), r.get("content"), r.get("score")) for r in results]


class SerperSearch(SearchApi):
    name = "serper"
    max_k = 100

    def request(self, query: str, k: int) -> ApiCall:
        return ApiCall(
            "POST",
            f"{self.base_url}/search",
            json={"q": query, "num": k},
            headers=self._headers("X-API-KEY"),
        )

    def parse(self, payload: Any) -> list[SearchHit]:
        organic = sorted(payload.get("organic") or [], key=lambda r: r.get("position", 1e9))
        return [_hit(r.get("link"), r.get("title"), r.get("snippet")) for r in organic]


class BraveSearch(SearchApi):
    name = "brave"
    max_k = 20

    def request(self, query: str, k: int) -> ApiCall:
        return ApiCall(
            "GET",
            f"{self.base_url}/web/search",
            params={"q": query, "count": k},
            headers=self._headers("X-Subscription-Token"),
        )

    def parse(self, payload: Any) -> list[SearchHit]:
        results = (payload.get("web") or {}).get("results") or []
        return [_hit(r.get("url"), r.get("title"), r.get("description")) for r in results]


class TavilySearch(SearchApi):
    name = "tavily"
    max_k = 20

    def request(self, query: str, k: int) -> ApiCall:
        return ApiCall(
            "POST",
            f"{self.base_url}/search",
            json={"query": query, "max_results": k, "search_depth": "basic"},
            headers=self._headers(None, bearer=True),
        )

    def parse(self, payload: Any) -> list[SearchHit]:
        return _scored_results(payload)


class SearxngSearch(SearchApi):
    name = "searxng"
    max_k = 50  # one page of results; more would need pageno=2

    def request(self, query: str, k: int) -> ApiCall:
        return ApiCall(
            "GET",
            f"{self.base_url}/search",
            params={"q": query, "format": "json", "pageno": 1},
            headers=self._headers(None, bearer=True),
        )

    def parse(self, payload: Any) -> list[SearchHit]:
        return _scored_results(payload)


SEARCH_APIS: dict[str, type[SearchApi]] = {
    api.name: api for api in (SerperSearch, BraveSearch, TavilySearch, SearxngSearch)
}
