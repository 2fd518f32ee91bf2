"""`RetrievalClient`: a SearchBackend that asks a retrieval server over HTTP (httpx).

Speaks the Search-R1 / ASearcher / RLinf wire format (see `retrieval_server`), so it works with
wideseek's own server and with theirs. Their hits may lack a `title`: then the first line of
`contents` (where those servers put the quoted title) is taken as the title.

Connection errors, timeouts, 429 and 5xx are retried a few times with a growing pause
(`wideseek.http_retry`); after that, or on any other bad answer, a `RetrievalError` with one
clear line is raised, which the front-end tools turn into an error result for the model. Knows
nothing about prompts.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from wideseek import http_retry
from wideseek.errors import WideseekError
from wideseek.tools.base import Page, SearchHit


class RetrievalError(WideseekError, RuntimeError):
    """The retrieval server could not answer; the message says which server and why."""


class RetrievalClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 30.0,
        retries: int = 3,
        backoff_s: float = 0.5,
    ) -> None:
        if "://" not in base_url:  # RLinf configs give "host:port"
            base_url = "http://" + base_url
        self.base_url = base_url.rstrip("/")
        self.timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0))
        self.retries = retries
        self.backoff_s = backoff_s
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- SearchBackend -------------------------------------------------------------------

    async def search(self, query: str, k: int) -> list[SearchHit]:
        body = {"queries": [query], "topk": k, "return_scores": True}
        result = await self._post("/retrieve", body)
        return [_hit(entry) for entry in _only(result, "/retrieve")]

    async def access(self, url: str) -> Page | None:
        result = await self._post("/access", {"urls": [url]})
        payload = _only(result, "/access")
        if not payload:
            return None
        text = payload.get("contents", payload.get("text", ""))
        return Page(url=payload.get("url", url), title=payload.get("title", ""), text=text)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- HTTP ----------------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        # An AsyncClient is tied to the loop it was first used on; make a new one per loop.
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout)
            self._loop = loop
        return self._client

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        where = f"retrieval server {self.base_url}{path}"
        client = self._http()

        async def attempt() -> Any:
            response = await client.post(path, json=body)
            status = response.status_code
            if status != 200:
                problem = f"HTTP {status}: {response.text[:200]}"
                http_retry.raise_if_retry_status(response, problem)
                raise RetrievalError(f"{where}: {problem}")
            try:
                return response.json()["result"]
            except (ValueError, KeyError, TypeError) as e:
                raise RetrievalError(f"{where}: answer has no 'result' field") from e

        policy = http_retry.RetryPolicy(
            attempts=self.retries + 1, backoff_s=self.backoff_s, jitter_s=self.backoff_s / 2
        )
        try:
            return await http_retry.call_with_retries(attempt, policy)
        except http_retry.GaveUp as e:
            last = e.last
            problem = (
                str(last)
                if isinstance(last, http_retry.Transient)
                else f"unreachable ({type(last).__name__}: {last or 'no detail'})"
            )
            raise RetrievalError(f"{where}: {problem} after {e.attempts} attempts") from None


def _only(result: Any, path: str) -> Any:
    if not isinstance(result, list) or len(result) != 1:
        raise RetrievalError(f"{path}: expected one result, got {type(result).__name__}")
    return result[0]


def _hit(entry: dict[str, Any]) -> SearchHit:
    payload = entry.get("document", entry)
    contents = str(payload.get("contents", payload.get("text", "")))
    title = payload.get("title")
    if title is None:  # Search-R1 style: '"Title"\ntext'
        first, _, rest = contents.partition("\n")
        title, contents = first.strip().strip('"'), rest
    return SearchHit(
        url=str(payload.get("url", "")),
        title=str(title),
        snippet=contents,
        score=entry.get("score"),
    )
