"""The one retry loop: what it retries, how long it pauses, when it gives up (no network: the
attempts raise what a client would see)."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest

from wideseek.http_retry import GaveUp, RetryPolicy, Transient, call_with_retries

POLICY = RetryPolicy(attempts=4, backoff_s=1.0, max_backoff_s=3.0, jitter_s=0.0)


class Script:
    """An attempt that raises the given failures in turn, then answers "ok"."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


class Pauses:
    def __init__(self) -> None:
        self.seen: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seen.append(seconds)


def connect_error() -> httpx.ConnectError:
    return httpx.ConnectError("refused")


async def test_connect_errors_and_busy_answers_are_retried_with_growing_pauses():
    attempt, pauses = Script(connect_error(), Transient("HTTP 503"), connect_error()), Pauses()
    assert await call_with_retries(attempt, POLICY, sleep=pauses) == "ok"
    assert attempt.calls == 4 and pauses.seen == [1.0, 2.0, 3.0]  # doubling, capped at 3


async def test_retry_after_replaces_the_backoff_up_to_its_cap():
    policy = RetryPolicy(attempts=3, backoff_s=1.0, jitter_s=0.0, max_retry_after_s=30.0)
    attempt = Script(Transient("HTTP 429", retry_after=7.0), Transient("429", retry_after=999))
    pauses = Pauses()
    assert await call_with_retries(attempt, policy, sleep=pauses) == "ok"
    assert pauses.seen == [7.0, 30.0]


async def test_the_last_failure_and_the_tries_come_back_in_gave_up():
    attempt, notes = Script(*[Transient(f"HTTP 50{i}") for i in range(5)]), []
    with pytest.raises(GaveUp) as info:
        await call_with_retries(
            attempt, POLICY, sleep=Pauses(), on_retry=lambda e, n, p: notes.append((str(e), n))
        )
    assert (str(info.value.last), info.value.attempts) == ("HTTP 503", 4)
    assert notes == [("HTTP 500", 1), ("HTTP 501", 2), ("HTTP 502", 3)]


async def test_other_errors_pass_through_at_once():
    attempt = Script(ValueError("a 404, say"))
    with pytest.raises(ValueError, match="a 404"):
        await call_with_retries(attempt, POLICY, sleep=Pauses())
    assert attempt.calls == 1


async def test_timeouts_are_retried_only_when_the_policy_says_so():
    no_timeouts = RetryPolicy(attempts=4, retry_timeouts=False)
    for slow in (httpx.ReadTimeout("slow"), TimeoutError()):
        with pytest.raises(GaveUp) as info:
            await call_with_retries(Script(slow), no_timeouts, sleep=Pauses())
        assert info.value.attempts == 1
    # a connect timeout is a connect error: retried whatever the policy says of timeouts
    attempt = Script(httpx.ConnectTimeout("no answer"))
    assert await call_with_retries(attempt, no_timeouts, sleep=Pauses()) == "ok"


async def test_no_pause_starts_that_would_end_past_the_deadline():
    loop = asyncio.get_running_loop()
    attempt, pauses = Script(Transient("busy", retry_after=10.0)), Pauses()
    with pytest.raises(GaveUp) as info:
        await call_with_retries(attempt, POLICY, deadline=loop.time() + 5.0, sleep=pauses)
    assert info.value.attempts == 1 and pauses.seen == []


async def test_jitter_is_reproducible_from_a_seeded_generator():
    policy = RetryPolicy(attempts=3, backoff_s=1.0, max_backoff_s=10.0, jitter_s=0.5)
    runs = []
    for _ in range(2):
        pauses = Pauses()
        attempt = Script(connect_error(), connect_error())
        await call_with_retries(attempt, policy, rng=random.Random(7), sleep=pauses)
        runs.append(pauses.seen)
    assert runs[0] == runs[1] and 1.0 <= runs[0][0] <= 1.5 and 2.0 <= runs[0][1] <= 2.5
