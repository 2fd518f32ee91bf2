"""`ThrottledHttp`: one backend's way to the network — rate limit, concurrency cap, retries.

Every web backend owns one. `run(attempt)` calls `attempt(client)` under the backend's
concurrency cap (an asyncio.Semaphore) and request rate (evenly spaced start times), inside a
time limit for the whole attempt (connect, headers and body: a server that drips bytes cannot
hold a slot forever) and, when `deadline_s` is set, one deadline for the whole call (waits,
tries and pauses between them: no retry starts that could not end in time). Transient
failures — 429, 408/425, 5xx, connect errors, dropped connections, bodies cut short, and
timeouts unless `retry_timeouts` is off (a page that was slow once is rarely quick the next
time) — are retried by `wideseek.http_retry` with exponential backoff and jitter, or after the
server's Retry-After when it gives one (capped). Anything else, or a transient failure that outlives
the retries, ends as one `WebToolError` "<backend>: <what went wrong>" with its `kind` and the
tries made (`attempts`), and the API key scrubbed from it.

Helpers for attempts: `check_status` (classify a response), `read_capped` (stream a body and
stop at N bytes). Redirects are never followed here: an API has no reason to redirect (and
following would send the key header along); direct fetch follows them itself, hop by hop.
This module knows nothing about search results, pages or caches.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import httpx

from wideseek import http_retry
from wideseek.tools.web.errors import ApiKey, WebToolError
from wideseek.web_config import RetrySettings

log = logging.getLogger("wideseek.tools.web")

T = TypeVar("T")
_DETAIL_BYTES = 2048  # of an error body, enough for a message


async def read_capped(response: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
    """The (decoded) body up to `max_bytes`, and whether more was left unread."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:  # stop reading: a huge page must not fill memory or the disk
            return b"".join(chunks)[:max_bytes], True
    return b"".join(chunks), False


async def send_capped(
    client: httpx.AsyncClient, request: httpx.Request, max_bytes: int
) -> tuple[httpx.Response, bytes, bool]:
    """Send `request`, check its status (`check_status`) and read at most `max_bytes` of the
    body: (response, body, truncated). The connection is released whatever happens."""
    response = await client.send(request, stream=True)
    try:
        await check_status(response)
        body, truncated = await read_capped(response, max_bytes)
    finally:
        await response.aclose()
    return response, body, truncated


async def check_status(response: httpx.Response) -> None:
    """Return on 2xx; raise `http_retry.Transient` on retryable ones, else WebToolError."""
    status = response.status_code
    if 200 <= status < 300:
        return
    raw, _ = await read_capped(response, _DETAIL_BYTES)
    detail = " ".join(raw.decode("utf-8", "replace").split())[:200]
    http_retry.raise_if_retry_status(response, f"HTTP {status}" + (f": {detail}" if detail else ""))
    if status in (401, 403):
        problem = f"HTTP {status}: API key missing or rejected ({detail or 'no detail'})"
    elif 300 <= status < 400:
        problem = (
            f"HTTP {status}: unexpected redirect to {response.headers.get('location', 'nowhere')}"
        )
    else:
        problem = f"HTTP {status}: {detail or 'no detail'}"
    raise WebToolError(problem, kind="http_status")


def _describe(exc: BaseException, limit: str) -> tuple[str, str]:
    """(kind, one line) for a failure of the network itself; `limit` says which time ran out."""
    if isinstance(exc, http_retry.Transient):
        return "http_status", str(exc)
    if http_retry.is_timeout(exc):
        return "timeout", f"timed out ({limit})"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "cut_short", f"connection broke off mid-answer ({exc or type(exc).__name__})"
    return "unreachable", f"unreachable ({type(exc).__name__}: {exc or 'no detail'})"


class _RateLimit:
    """Evenly spaced start times, `per_s` a second. No lock needed: the reservation is made
    without awaiting, and an event loop runs one coroutine at a time."""

    def __init__(self, per_s: float) -> None:
        self.interval = 1.0 / per_s if per_s > 0 else 0.0
        self._next = 0.0

    def reserve(self) -> float:
        """Seconds to wait before the caller may start."""
        if not self.interval:
            return 0.0
        now = time.monotonic()
        start = max(now, self._next)
        self._next = start + self.interval
        return start - now


class ThrottledHttp:
    def __init__(
        self,
        name: str,
        *,
        retry: RetrySettings,
        timeout_s: float,
        rate_per_s: float = 0.0,
        max_concurrency: int = 8,
        key: ApiKey | None = None,
        deadline_s: float | None = None,
        retry_timeouts: bool = True,
        trust_env: bool = True,
        keepalive: bool = True,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.retry = retry
        self.timeout_s = timeout_s  # one try
        self.deadline_s = deadline_s  # one call, all tries and pauses; None: no such limit
        self.retry_timeouts = retry_timeouts
        self.max_concurrency = max_concurrency
        self.key = key
        self.trust_env = trust_env
        self.keepalive = keepalive
        self.headers = headers or {}
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # tests record pauses
        self._rate = _RateLimit(rate_per_s)
        # RetrySettings is RetryPolicy's config form: the same fields, less retry_timeouts
        self._policy = http_retry.RetryPolicy(**retry.model_dump(), retry_timeouts=retry_timeouts)
        self._rng = random.Random()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None
        self._slots: asyncio.Semaphore | None = None

    def __repr__(self) -> str:
        return f"ThrottledHttp({self.name!r}, key={self.key!r})"

    # -- per event loop state ------------------------------------------------------------

    def _bind(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        # A client and a semaphore belong to the loop that first used them; a new loop (a new
        # `asyncio.run`) gets new ones.
        loop = asyncio.get_running_loop()
        if self._client is None or self._slots is None or self._loop is not loop:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout_s),
                follow_redirects=False,
                trust_env=self.trust_env,
                headers=self.headers,
                limits=httpx.Limits(
                    max_connections=max(100, self.max_concurrency),  # the semaphore caps
                    max_keepalive_connections=20 if self.keepalive else 0,
                ),
            )
            self._slots = asyncio.Semaphore(self.max_concurrency)
            self._loop = loop
        return self._client, self._slots

    @asynccontextmanager
    async def _slot(self, slots: asyncio.Semaphore) -> AsyncIterator[None]:
        async with slots:
            delay = self._rate.reserve()
            if delay > 0:
                await asyncio.sleep(delay)
            yield

    # -- the retry loop ------------------------------------------------------------------

    def _note_retry(self, failure: BaseException, retry: int, pause: float) -> None:
        problem = self.scrub(_describe(failure, f"limit {self.timeout_s:g} s")[1])
        log.info("%s: %s; retry %d in %.2f s", self.name, problem, retry, pause)

    def scrub(self, text: str) -> str:
        return self.key.scrub(text) if self.key else text

    async def run(self, attempt: Callable[[httpx.AsyncClient], Awaitable[T]]) -> tuple[T, int]:
        """`attempt(client)`'s result and how many tries it took; retries transient failures."""
        client, slots = self._bind()
        loop = asyncio.get_running_loop()
        deadline = None if self.deadline_s is None else loop.time() + self.deadline_s
        tries = 0

        async def once() -> T:
            nonlocal tries
            async with asyncio.timeout_at(deadline), self._slot(slots):
                tries += 1  # counted once a slot is held: a try that never started is none
                async with asyncio.timeout(self.timeout_s):
                    return await attempt(client)

        # `from None`: a chained cause would carry the unscrubbed text (an echoed key) along.
        try:
            result = await http_retry.call_with_retries(
                once,
                self._policy,
                deadline=deadline,
                rng=self._rng,
                sleep=self.sleep,
                on_retry=self._note_retry,
            )
            return result, tries
        except WebToolError as e:
            message = self.scrub(f"{self.name}: {e}")
            raise type(e)(message, kind=e.kind, attempts=tries) from None
        except http_retry.GaveUp as e:
            late = deadline is not None and loop.time() >= deadline
            limit = (
                f"deadline {self.deadline_s:g} s per call"
                if late
                else f"limit {self.timeout_s:g} s"
            )
            kind, problem = _describe(e.last, limit)
            raise WebToolError(
                f"{self.name}: {self.scrub(problem)}, after {tries} attempt{'s' * (tries != 1)}",
                kind=kind,
                attempts=tries,
            ) from None

    async def aclose(self) -> None:
        if self._client is not None and self._loop is asyncio.get_running_loop():
            await self._client.aclose()
        self._client = self._slots = self._loop = None
