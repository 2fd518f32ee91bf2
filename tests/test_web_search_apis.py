"""Web search APIs against a loopback fake of each: wire format, keys, faults, limits, checks."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import traceback
from collections.abc import Iterator

import pytest

from test_web_fakes import FakeWeb, Fault, expected_urls
from wideseek.config import ToolsConfig
from wideseek.http_retry import parse_retry_after
from wideseek.tools.search_tools import make_tools
from wideseek.tools.web import WebToolError, audit_of, check_backends, open_web_backend
from wideseek.tools.web.throttled_http import _RateLimit

KEY = "sk-test-secret-4242"
KEY_ENV = "WIDESEEK_TEST_WEB_KEY"
APIS = ["serper", "brave", "tavily", "searxng"]


@pytest.fixture(scope="module")
def web() -> Iterator[FakeWeb]:
    keys = {"serper": KEY, "brave": KEY, "tavily": KEY}
    with FakeWeb(keys) as server:
        yield server


@pytest.fixture(autouse=True)
def fresh(web: FakeWeb, monkeypatch: pytest.MonkeyPatch) -> None:
    web.reset()
    monkeypatch.setenv(KEY_ENV, KEY)


class Pauses:
    """Stands in for asyncio.sleep in the retry loop: records the pause, waits not at all."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seen.append(seconds)


@pytest.mark.parametrize("name", APIS)
async def test_each_api_gives_ranked_hits_and_sends_its_key_its_way(web: FakeWeb, name: str):
    backend = open_web_backend(web.config(KEY_ENV, search=name))
    hits = await backend.search("  capital of   Norway ", 3)
    assert [h.url for h in hits] == expected_urls("capital of Norway", 3)
    assert hits[0].title == "capital of Norway — result 1"
    assert hits[0].snippet == "Snippet 1 about capital of Norway."  # Brave's <strong> removed
    audit = audit_of(hits)
    assert audit is not None
    assert audit["backend"] == name and audit["kind"] == "search"
    assert audit["request"] == "capital of Norway" and audit["cache"] == "off"
    assert audit["status"] == 200 and audit["attempts"] == 1 and audit["bytes"] > 0
    (seen,) = web.seen(name)
    headers = seen.headers
    if name == "serper":
        assert headers["x-api-key"] == KEY and json.loads(seen.body) == {
            "q": "capital of Norway",
            "num": 3,
        }
    elif name == "brave":
        assert headers["x-subscription-token"] == KEY and "count=3" in seen.query
    elif name == "tavily":
        assert headers["authorization"] == f"Bearer {KEY}"
        assert json.loads(seen.body)["max_results"] == 3
    else:
        assert "format=json" in seen.query
    await backend.aclose()


async def test_a_missing_key_names_the_variable_and_sends_nothing(web, monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    backend = open_web_backend(web.config(KEY_ENV, search="serper"))
    with pytest.raises(WebToolError, match=f"serper: no API key: .*{KEY_ENV}") as failure:
        await backend.search("anything", 3)
    assert web.requests == []
    assert audit_of(failure.value)["error"].startswith("serper: no API key")


async def test_the_key_never_shows_in_errors_reprs_audits_or_logs(web, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(KEY_ENV, KEY + "-wrong")  # the fake echoes the presented key in its 401
    backend = open_web_backend(web.config(KEY_ENV, search="brave"))
    with pytest.raises(WebToolError) as failure:
        await backend.search("anything", 3)
    message = str(failure.value)
    assert "HTTP 401" in message and "key missing or rejected" in message and "***" in message
    assert web.seen("brave")[0].headers["x-subscription-token"] == KEY + "-wrong"  # it was sent
    tools = make_tools("wideseek", "subagent", backend, ToolsConfig())
    result = await tools[0].call({"query": "anything"})
    assert result.error and "Search failed: brave: HTTP 401" in result.text
    leaks = [
        message,
        repr(backend),
        "".join(traceback.format_exception(failure.value)),  # causes included
        json.dumps(audit_of(failure.value)),
        result.text,
        json.dumps(result.data),
        caplog.text,
    ]
    assert not [text for text in leaks if KEY in text]


async def test_429_waits_as_long_as_retry_after_says_then_succeeds(web):
    backend = open_web_backend(web.config(KEY_ENV, search="serper"))
    pauses = backend.searcher.http.sleep = Pauses()
    web.fail_next("serper", Fault(429, {"Retry-After": "7"}), Fault(429, {"Retry-After": "999"}))
    hits = await backend.search("oslo", 2)
    assert [h.url for h in hits] == expected_urls("oslo", 2)
    assert pauses.seen == [7.0, 30.0]  # the server's pause, then the configured cap
    assert audit_of(hits)["attempts"] == 3


async def test_500_then_success_backs_off_and_succeeds(web):
    backend = open_web_backend(web.config(KEY_ENV, search="tavily"))
    pauses = backend.searcher.http.sleep = Pauses()
    web.fail_next("tavily", Fault(500), Fault(502))
    hits = await backend.search("bern", 2)
    assert len(hits) == 2 and audit_of(hits)["attempts"] == 3
    assert len(pauses.seen) == 2 and all(0 <= p <= 0.004 for p in pauses.seen)


async def test_persistent_503_ends_in_one_clear_error_after_the_configured_attempts(web):
    cfg = web.config(KEY_ENV, search="searxng", retry={"attempts": 3})
    backend = open_web_backend(cfg)
    web.fail_next("searxng", *[Fault(503, body=b"overloaded")] * 3)
    with pytest.raises(WebToolError) as failure:
        await backend.search("bern", 2)
    assert str(failure.value) == "searxng: HTTP 503: overloaded, after 3 attempts"
    assert len(web.seen("searxng")) == 3
    audit = audit_of(failure.value)  # the tries are counted on failure as on success
    assert (audit["attempts"], audit["error_kind"]) == (3, "http_status")
    # the model-facing tool turns it into an error result, not an exception
    tools = make_tools("wideseek", "subagent", backend, ToolsConfig())
    web.fail_next("searxng", *[Fault(503, body=b"overloaded")] * 3)
    result = await tools[0].call({"query": "bern"})
    assert result.error and "searxng: HTTP 503" in result.text


async def test_a_4xx_that_is_not_transient_is_not_retried(web):
    backend = open_web_backend(web.config(KEY_ENV, search="serper"))
    web.fail_next("serper", Fault(400, body=b'{"message": "Query too long"}'))
    with pytest.raises(WebToolError, match=r"serper: HTTP 400: .*Query too long"):
        await backend.search("x" * 50, 2)
    assert len(web.seen("serper")) == 1


async def test_timeouts_are_retried_then_reported(web):
    cfg = web.config(KEY_ENV, search="serper", timeout_s=0.2, retry={"attempts": 2})
    backend = open_web_backend(cfg)
    web.fail_next("serper", Fault(200, delay_s=1.0))  # first try stalls, second answers
    hits = await backend.search("slow", 2)
    assert len(hits) == 2 and audit_of(hits)["attempts"] == 2
    web.fail_next("serper", Fault(200, delay_s=1.0), Fault(200, delay_s=1.0))
    with pytest.raises(WebToolError, match=r"serper: timed out \(limit 0.2 s\), after 2 attempts"):
        await backend.search("slower", 2)


async def test_a_body_cut_short_is_retried_then_reported(web):
    backend = open_web_backend(web.config(KEY_ENV, search="serper", retry={"attempts": 2}))
    web.fail_next("serper", Fault(cut=True))
    hits = await backend.search("cut", 2)
    assert len(hits) == 2 and audit_of(hits)["attempts"] == 2
    web.fail_next("serper", Fault(cut=True), Fault(cut=True))
    with pytest.raises(WebToolError, match="serper: connection broke off mid-answer"):
        await backend.search("cut again", 2)


async def test_an_answer_that_is_not_json_or_of_another_shape_is_a_clear_error(web):
    backend = open_web_backend(web.config(KEY_ENV, search="brave"))
    web.fail_next("brave", Fault(200, body=b"<html>maintenance</html>"))
    with pytest.raises(WebToolError, match="brave: answer is not JSON"):
        await backend.search("x", 2)
    web.fail_next("brave", Fault(200, body=b'{"web": {"results": 7}}'))
    with pytest.raises(WebToolError, match="brave: answer has an unexpected shape"):
        await backend.search("x", 2)


async def test_an_unreachable_api_is_reported_with_its_name(web):
    cfg = web.config(KEY_ENV, search="serper", retry={"attempts": 2})
    cfg.serper.base_url = "http://127.0.0.1:9/nothing"  # the discard port: nobody listens
    backend = open_web_backend(cfg)
    with pytest.raises(WebToolError, match=r"serper: unreachable \(ConnectError"):
        await backend.search("x", 2)


async def test_the_concurrency_cap_holds_per_backend(web):
    cfg = web.config(KEY_ENV, search="serper", serper={"max_concurrency": 2, "rate_per_s": 0})
    backend = open_web_backend(cfg)
    results = await asyncio.gather(*(backend.search(f"q{i}", 1) for i in range(8)))
    assert all(len(r) == 1 for r in results)
    assert web.max_in_flight["serper"] <= 2


def test_the_rate_limit_spaces_start_times_evenly(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("wideseek.tools.web.throttled_http.time.monotonic", lambda: now[0])
    limit = _RateLimit(per_s=4)
    assert [limit.reserve() for _ in range(3)] == [0.0, 0.25, 0.5]
    now[0] += 10  # idle for a while: no debt carried over
    assert limit.reserve() == 0.0
    assert _RateLimit(per_s=0).reserve() == 0.0  # 0: unlimited


def test_retry_after_reads_seconds_and_http_dates():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


async def test_check_backends_says_one_line_per_backend(web, monkeypatch):
    web.page("check", "<html><body><p>fine</p></body></html>")
    cfg = web.config(KEY_ENV, search="serper", access="direct")
    lines = await check_backends(cfg, resolver=web.resolve)
    assert [(name, ok) for name, ok, _ in lines] == [("serper", True), ("direct", True)]
    assert lines[0][2].startswith(f"ok: {web.url}/serper answered (1 result)")
    everything = await check_backends(cfg, [*APIS, "jina", "nope"], resolver=web.resolve)
    assert [ok for _, ok, _ in everything] == [True, True, True, True, True, False]
    assert everything[5][2].startswith("unknown backend")
    monkeypatch.delenv(KEY_ENV)
    lines = await check_backends(cfg, [*APIS, "jina"])
    missing = {name: (ok, line) for name, ok, line in lines}
    assert missing["serper"] == (False, f"no API key: set the environment variable {KEY_ENV}")
    assert missing["searxng"][0]  # needs no key
    assert missing["jina"][0] and "no key" in missing["jina"][1]  # works without, and says so
    monkeypatch.setenv(KEY_ENV, KEY + "-revoked")
    (rejected,) = await check_backends(cfg, ["tavily"])
    assert not rejected[1] and "HTTP 401" in rejected[2] and KEY not in rejected[2]


async def test_a_missing_web_extra_is_one_clear_line(web, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "trafilatura" else real_find_spec(name, *a),
    )
    cfg = web.config(KEY_ENV, search="serper", access="direct")
    with pytest.raises(
        WebToolError, match=r"missing: trafilatura\): pip install 'wideseek\[web\]'"
    ):
        open_web_backend(cfg)
    lines = {name: ok for name, ok, _ in await check_backends(cfg, resolver=web.resolve)}
    assert lines == {"serper": True, "direct": False}
