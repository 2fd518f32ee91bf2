"""`ThrottledHttp`: one backend's way to the network — rate limit, concurrency cap, retries.

Every web backend owns one. `run(attempt)` calls `attempt(client)` under the backend's
concurrency cap (an asyncio.Semaphore) and request rate (evenly spaced start times), inside a
time limit for the whole attempt (connect, headers and body: a server that drips bytes cannot
hold a slot forever) and, when `deadline_s` is set, one deadline for the whole call (waits,
tries and pauses between them: no retry starts that could not end in time). Transient
failures — 429, 408/425, 5xx, connect errors, dropped connections, bodies cut short, and
timeouts unless `retry_timeouts` is off (a page that was slow once is rarely quick the next
time) — are retried by tenacity with exponential backoff and jitter, or after the server's
Retry-After when it gives one (capped). Anything else, or a transient failure that outlives
the retries, ends as one `WebToolError` "<backend>: <what went wrong>" with its `kind` and the
tries made (`attempts`), and the API key scrubbed from it.

Helpers for attempts: `check_status` (classify a response), `read_capped` (stream a body and
stop at N bytes). Redirects are never followed here: an API has no reason to redirect (and
following would send the key header along); direct fetch follows them itself, hop by hop.
This module knows nothing about search results, pages or caches.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeVar

import httpx

from wideseek.tools.web.config import RetrySettings
from wideseek.tools.web.errors import ApiKey, WebToolError

if TYPE_CHECKING:  # tenacity is imported when first needed: the `web` extra is optional
    from tenacity import AsyncRetrying, RetryCallState

log = logging.getLogger("wideseek.tools.web")

T = TypeVar("T")
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_DETAIL_BYTES = 2048  # of an error body, enough for a message


class TransientStatus(Exception):
    """An HTTP status worth retrying; `retry_after` is the server's requested pause, if any."""

    def __init__(self, status: int, retry_after: float | None, detail: str) -> None:
        super().__init__(f"HTTP {status}" + (f": {detail}" if detail else ""))
        self.status = status
        self.retry_after = retry_after


def _is_transient(exc: BaseException, *, timeouts: bool) -> bool:
    # httpx.TimeoutException and RemoteProtocolError (a body cut short) are TransportErrors;
    # TimeoutError is our own whole-attempt limit. A connect timeout is a connect error.
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return timeouts or isinstance(exc, httpx.ConnectTimeout)
    return isinstance(exc, TransientStatus | httpx.TransportError)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


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
    """Return on 2xx; raise TransientStatus on retryable ones, else WebToolError."""
    status = response.status_code
    if 200 <= status < 300:
        return
    raw, _ = await read_capped(response, _DETAIL_BYTES)
    detail = " ".join(raw.decode("utf-8", "replace").split())[:200]
    if status in RETRY_STATUS:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        raise TransientStatus(status, retry_after, detail)
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
    if isinstance(exc, TransientStatus):
        return "http_status", str(exc)
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
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
        self._backoff: Callable[[RetryCallState], float] | None = None
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

    def _retrying(self, deadline: float | None) -> AsyncRetrying:
        from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt
        from tenacity.wait import wait_exponential_jitter

        if self._backoff is None:
            self._backoff = wait_exponential_jitter(
                multiplier=self.retry.backoff_s,
                max=self.retry.max_backoff_s,
                jitter=self.retry.jitter_s,
            )
        enough = stop_after_attempt(self.retry.attempts)
        loop = asyncio.get_running_loop()

        def stop(state: RetryCallState) -> bool:  # also when the pause would end past the deadline
            late = deadline is not None and loop.time() + state.upcoming_sleep >= deadline
            return late or enough(state)

        return AsyncRetrying(
            stop=stop,
            wait=self._wait,
            retry=retry_if_exception(lambda e: _is_transient(e, timeouts=self.retry_timeouts)),
            before_sleep=self._before_sleep,
            sleep=self._pause,
            reraise=True,
        )

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientStatus) and exc.retry_after is not None:
            return min(exc.retry_after, self.retry.max_retry_after_s)
        assert self._backoff is not None  # set by _retrying
        return float(self._backoff(state))

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        pause = state.next_action.sleep if state.next_action else 0.0
        problem = self.scrub(_describe(exc, f"limit {self.timeout_s:g} s")[1]) if exc else "?"
        log.info("%s: %s; retry %d in %.2f s", self.name, problem, state.attempt_number, pause)

    async def _pause(self, seconds: float) -> None:
        await self.sleep(seconds)

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
            return await self._retrying(deadline)(once), tries
        except WebToolError as e:
            message = self.scrub(f"{self.name}: {e}")
            raise type(e)(message, kind=e.kind, attempts=tries) from None
        except (TransientStatus, httpx.TransportError, TimeoutError) as e:
            late = deadline is not None and loop.time() >= deadline
            limit = (
                f"deadline {self.deadline_s:g} s per call"
                if late
                else f"limit {self.timeout_s:g} s"
            )
            kind, problem = _describe(e, limit)
            raise WebToolError(
                f"{self.name}: {self.scrub(problem)}, after {tries} attempt{'s' * (tries != 1)}",
                kind=kind,
                attempts=tries,
            ) from None

    async def aclose(self) -> None:
        if self._client is not None and self._loop is asyncio.get_running_loop():
            await self._client.aclose()
        self._client = self._slots = self._loop = None
