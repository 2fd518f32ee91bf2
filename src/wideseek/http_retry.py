"""One retry loop for every HTTP client of wideseek (engine, judge, retrieval, web backends).

Contract: `await call_with_retries(attempt, policy)` awaits `attempt()` (one request, made by
the caller on its own `httpx.AsyncClient`) and awaits it again after a pause when it failed in a
way that may pass:
- an httpx transport error: connect errors, dropped connections, bodies cut short; timeouts
  (httpx's or an `asyncio.timeout` around the attempt) only with `policy.retry_timeouts`, except
  a connect timeout, which is a connect error;
- `Transient`, which an attempt raises for an answer worth asking again: a status in
  `RETRY_STATUS` (`raise_if_retry_status`), or a reply that could not be read.
Pauses grow as `backoff_s * 2**n` plus up to `jitter_s` of random (so clients that failed
together do not retry together), at most `max_backoff_s`; a server's `Retry-After` replaces that
pause, capped at `max_retry_after_s`. With a `deadline` (event loop time) no pause starts that
would end past it. Once the tries are spent, the deadline is near, or a timeout is not to be
retried, `GaveUp` carries the last failure and the tries made: each client turns it into its own
one-line error. Anything else an attempt raises (a 4xx, a bad answer) passes through at once.

RETRY_STATUS is 429 and the 5xx statuses that mean "try later" (500, 502, 503, 504), plus 408
and 425, which say the same; 501 and the other 4xx are answers, not accidents. Knows nothing
about URLs, bodies, keys or any API.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx

T = TypeVar("T")
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # tries in all, the first included
    backoff_s: float = 0.5  # the first pause; doubles each retry
    max_backoff_s: float = 8.0
    jitter_s: float = 0.5  # random extra pause, up to this
    max_retry_after_s: float = 30.0  # longest pause a server's Retry-After can ask for
    retry_timeouts: bool = True

    def pause(self, retry: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number `retry` (0 for the first)."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after_s)
        return min(self.max_backoff_s, self.backoff_s * 2**retry + rng.uniform(0, self.jitter_s))


class Transient(Exception):
    """One attempt failed in a way worth retrying; the message says how, on one line."""

    def __init__(
        self, problem: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(problem)
        self.status = status
        self.retry_after = retry_after


class GaveUp(Exception):
    """The network kept failing: `last` is the last failure, `attempts` the tries made."""

    def __init__(self, last: BaseException, attempts: int) -> None:
        super().__init__(str(last) or type(last).__name__)
        self.last = last
        self.attempts = attempts


def is_retry_status(status: int) -> bool:
    return status in RETRY_STATUS


def is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, httpx.TimeoutException | TimeoutError)


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


def retry_after(response: httpx.Response) -> float | None:
    return parse_retry_after(response.headers.get("retry-after"))


def raise_if_retry_status(response: httpx.Response, problem: str) -> None:
    """`Transient(problem)`, with the server's Retry-After, when the status says "try later"."""
    if is_retry_status(response.status_code):
        raise Transient(problem, status=response.status_code, retry_after=retry_after(response))


def _network_failure(exc: BaseException) -> bool:
    return isinstance(exc, Transient | httpx.TransportError | TimeoutError)


def _worth_retrying(exc: BaseException, policy: RetryPolicy) -> bool:
    if is_timeout(exc):
        return policy.retry_timeouts or isinstance(exc, httpx.ConnectTimeout)
    return True


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    deadline: float | None = None,
    rng: random.Random | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    on_retry: Callable[[BaseException, int, float], None] | None = None,
) -> T:
    """`attempt()`'s result, retried as the module docstring says. `on_retry(failure, n,
    pause)` is told before retry n (1-based) so that a client can log it its own way; `sleep`
    stands in for the pause in tests."""
    rng = rng or random.Random()
    loop = asyncio.get_running_loop()
    tries = 0
    while True:
        tries += 1
        try:
            return await attempt()
        except Exception as e:
            if not _network_failure(e):
                raise
            if tries >= policy.attempts or not _worth_retrying(e, policy):
                raise GaveUp(e, tries) from None
            hint = e.retry_after if isinstance(e, Transient) else None
            pause = policy.pause(tries - 1, hint, rng)
            if deadline is not None and loop.time() + pause >= deadline:
                raise GaveUp(e, tries) from None
            if on_retry is not None:
                on_retry(e, tries, pause)
        await sleep(pause)
