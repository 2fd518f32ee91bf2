"""The on-disk web cache: hits and misses, normalised keys, TTL, replay, concurrent callers, and
files that are corrupt (kept aside, a new cache), locked or unusable (one warning, no crash)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from test_web_fakes import FakeWeb, Fault, expected_urls
from wideseek.config import ToolsConfig
from wideseek.tools.search_tools import make_tools
from wideseek.tools.web import WebToolError, audit_of, open_web_backend
from wideseek.tools.web.cache import WebCache, cache_key

KEY = "sk-cache-test-secret-99"
KEY_ENV = "WIDESEEK_TEST_CACHE_KEY"


@pytest.fixture(scope="module")
def web() -> Iterator[FakeWeb]:
    with FakeWeb({"serper": KEY}) as server:
        server.page("oslo.html", "<html><body><p>Oslo is the capital of Norway.</p></body></html>")
        yield server


@pytest.fixture(autouse=True)
def fresh(web: FakeWeb, monkeypatch: pytest.MonkeyPatch) -> None:
    web.reset()
    monkeypatch.setenv(KEY_ENV, KEY)


@pytest.fixture
def cache_path(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "web.sqlite"


def cached(web: FakeWeb, path: Path, **overrides):
    cfg = web.config(KEY_ENV, access="direct", cache=True, cache_path=path, **overrides)
    return open_web_backend(cfg, resolver=web.resolve)


async def test_the_second_search_is_a_cache_hit_with_the_same_hits(web, cache_path):
    backend = cached(web, cache_path)
    first = await backend.search("capital of Norway", 3)
    second = await backend.search("  capital   of Norway ", 3)  # same request, normalised
    assert second == first and [h.url for h in second] == expected_urls("capital of Norway", 3)
    assert len(web.seen("serper")) == 1
    miss, hit = audit_of(first), audit_of(second)
    assert (miss["cache"], miss["attempts"], hit["cache"], hit["attempts"]) == ("miss", 1, "hit", 0)
    # a hit keeps the facts of the fetch that filled it
    assert hit["status"] == miss["status"] == 200 and hit["bytes"] == miss["bytes"]
    await backend.search("capital of Norway", 5)  # another k is another request
    assert len(web.seen("serper")) == 2
    await backend.aclose()


async def test_pages_are_cached_by_normalised_url_with_their_final_url(web, cache_path):
    web.page("moved", status=301, location="/site/oslo.html")
    backend = cached(web, cache_path)
    first = await backend.access(web.site_url("moved"))
    second = await backend.access(web.site_url("moved").replace("fake.test", "FAKE.test") + "#x")
    assert second.text == first.text == "Oslo is the capital of Norway."
    assert [s.path for s in web.seen("site")] == ["/site/moved", "/site/oslo.html"]
    hit = audit_of(second)
    assert hit["cache"] == "hit" and hit["final_url"] == web.site_url("oslo.html")
    assert hit["redirects"] == 1


async def test_entries_older_than_the_ttl_are_fetched_again(web, cache_path):
    backend = cached(web, cache_path, cache_ttl_s=60)
    await backend.search("bern", 2)
    await backend.search("bern", 2)
    assert len(web.seen("serper")) == 1
    with sqlite3.connect(cache_path) as db:  # age the entry by two minutes
        db.execute("UPDATE answers_v1 SET created = created - 120")
    assert audit_of(await backend.search("bern", 2))["cache"] == "miss"
    assert len(web.seen("serper")) == 2


async def test_failures_are_not_cached(web, cache_path):
    backend = cached(web, cache_path, retry={"attempts": 1})
    web.fail_next("serper", Fault(500))
    with pytest.raises(WebToolError, match="serper: HTTP 500"):
        await backend.search("flaky", 2)
    assert audit_of(await backend.search("flaky", 2))["cache"] == "miss"


async def test_replay_answers_only_from_the_cache_whatever_its_age(web, cache_path):
    recorder = cached(web, cache_path, cache_ttl_s=1)
    hits = await recorder.search("capital of Norway", 3)
    page = await recorder.access(web.site_url("oslo.html"))
    await recorder.aclose()
    with sqlite3.connect(cache_path) as db:
        db.execute("UPDATE answers_v1 SET created = created - 86400")  # long expired
    web.reset()
    replay = cached(web, cache_path, cache_ttl_s=1, replay=True)
    assert await replay.search("capital of Norway", 3) == hits
    assert (await replay.access(web.site_url("oslo.html"))).text == page.text
    assert web.requests == []  # nothing went to the network
    with pytest.raises(WebToolError, match="replay mode: no cached serper answer for search 'new'"):
        await replay.search("new", 3)
    tools = make_tools("wideseek", "subagent", replay, ToolsConfig())
    result = await tools[1].call({"url": web.site_url("unseen")})
    assert result.error and "replay mode: no cached direct answer for access" in result.text
    assert web.requests == []


def test_replay_without_the_cache_is_refused_at_open(web):
    with pytest.raises(WebToolError, match="replay mode needs the cache"):
        open_web_backend(web.config(cache=False, replay=True))


async def test_a_corrupt_cache_file_is_kept_aside_and_a_new_cache_started(web, cache_path, caplog):
    cache_path.parent.mkdir(parents=True)
    garbage = b"this is not a database, just bytes " * 200
    cache_path.write_bytes(garbage)
    backend = cached(web, cache_path)
    with caplog.at_level(logging.WARNING):
        results = [await backend.search("oslo", 2) for _ in range(3)]
        await backend.access(web.site_url("oslo.html"))
    assert all([h.url for h in r] == expected_urls("oslo", 2) for r in results)
    assert [audit_of(r)["cache"] for r in results] == ["miss", "hit", "hit"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "started a new one" in warnings[0].getMessage()
    assert len(web.seen("serper")) == 1
    assert cache_path.with_name("web.sqlite.corrupt").read_bytes() == garbage  # kept, as it was
    # the new cache answers a replay
    replay = cached(web, cache_path, replay=True)
    assert [h.url for h in await replay.search("oslo", 2)] == expected_urls("oslo", 2)


async def test_a_locked_cache_file_means_no_cache_and_one_warning(web, cache_path, caplog):
    cache_path.parent.mkdir(parents=True)
    holder = sqlite3.connect(cache_path, isolation_level=None)
    holder.execute("CREATE TABLE other (x)")
    holder.execute("BEGIN EXCLUSIVE")  # another process mid-write, in rollback-journal mode
    try:
        backend = cached(web, cache_path, cache_busy_timeout_s=0.05)
        with caplog.at_level(logging.WARNING, logger="wideseek.tools.web"):
            for _ in range(3):
                assert len(await backend.search("locked", 2)) == 2
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "database is locked" in warnings[0].getMessage()
    finally:
        holder.execute("ROLLBACK")
        holder.close()


async def test_an_unusable_cache_path_means_no_cache(web, tmp_path, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    backend = cached(web, blocker / "web.sqlite")
    with caplog.at_level(logging.WARNING, logger="wideseek.tools.web"):
        assert len(await backend.search("x", 2)) == 2
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


async def test_fifty_concurrent_callers_get_what_the_network_gives(web, cache_path):
    queries = [f"query {i % 10}" for i in range(50)]
    plain = open_web_backend(web.config(KEY_ENV))
    expected = await asyncio.gather(*(plain.search(q, 3) for q in queries))
    backend = cached(web, cache_path)
    for _ in range(2):  # a cold round (misses, concurrent writes), then a warm one
        got = await asyncio.gather(*(backend.search(q, 3) for q in queries))
        assert got == expected
    warm = [audit_of(hits)["cache"] for hits in got]
    assert warm == ["hit"] * 50
    with sqlite3.connect(cache_path) as db:
        assert db.execute("SELECT count(*) FROM answers_v1").fetchone() == (10,)


async def test_the_cache_file_holds_no_key(web, cache_path):
    backend = cached(web, cache_path)
    await backend.search("secret-free", 2)
    await backend.aclose()
    assert KEY.encode() not in cache_path.read_bytes()


async def test_two_cache_objects_share_one_file(tmp_path):
    path = tmp_path / "shared.sqlite"
    first, second = WebCache(path, ttl_s=60), WebCache(path, ttl_s=60)
    await first.put("k", backend="b", kind="search", request="q", value={"n": 1})
    hit = await second.get("k")
    assert hit is not None and hit.value == {"n": 1}
    assert await second.get("missing") is None
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        db.execute("UPDATE answers_v1 SET value = 'not json'")
    assert await first.get("k") is None and first.available  # a bad row is a miss
    first.close()
    second.close()


# -- in-flight coalescing and the base URL in the key -----------------------------------------


async def test_concurrent_identical_searches_make_one_request(web):
    backend = open_web_backend(web.config(KEY_ENV))  # no cache: coalescing alone
    queries = ["capital of Norway", "  capital of   Norway", "capital of Norway"] * 4
    results = await asyncio.gather(*(backend.search(q, 3) for q in queries))
    assert len(web.seen("serper")) == 1
    assert all(r == results[0] for r in results)
    assert [h.url for h in results[0]] == expected_urls("capital of Norway", 3)
    audits = [audit_of(r) for r in results]
    assert [a["coalesced"] for a in audits].count(False) == 1
    joined = [a for a in audits if a["coalesced"]]
    assert all(a["attempts"] == 0 and a["status"] == 200 for a in joined)
    assert len({id(r[0]) for r in results}) == len(results)  # no caller shares another's hits
    # once answered, the next identical request asks again (no cache here), another k too
    await backend.search("capital of Norway", 3)
    await asyncio.gather(backend.search("capital of Norway", 3), backend.search("x", 2))
    assert len(web.seen("serper")) == 3 + 1
    await backend.aclose()


async def test_concurrent_identical_accesses_make_one_request(web, cache_path):
    backend = cached(web, cache_path)
    urls = [web.site_url("oslo.html"), web.site_url("oslo.html").replace("fake", "FAKE")] * 3
    pages = await asyncio.gather(*(backend.access(u) for u in urls))
    assert len(web.seen("site")) == 1
    assert {p.text for p in pages} == {"Oslo is the capital of Norway."}
    assert sorted(audit_of(p)["coalesced"] for p in pages) == [False] + [True] * 5
    await backend.aclose()


async def test_a_failure_reaches_every_joined_caller_with_its_own_audit(web):
    backend = open_web_backend(web.config(KEY_ENV, retry={"attempts": 1}))
    web.fail_next("serper", Fault(500))
    outcomes = await asyncio.gather(
        *(backend.search("flaky", 2) for _ in range(3)), return_exceptions=True
    )
    assert len(web.seen("serper")) == 1
    assert all(isinstance(e, WebToolError) and "serper: HTTP 500" in str(e) for e in outcomes)
    audits = [audit_of(e) for e in outcomes]
    assert sorted(a["coalesced"] for a in audits) == [False, True, True]
    assert len({id(a) for a in audits}) == 3 and all(a["error"] for a in audits)
    assert len(await backend.search("flaky", 2)) == 2  # a failure is not kept either
    await backend.aclose()


async def test_a_cancelled_caller_does_not_cancel_the_request_for_the_others(web):
    backend = open_web_backend(web.config(KEY_ENV))
    web.fail_next("serper", Fault(200, delay_s=1.0))  # the request stalls, then answers
    first = asyncio.create_task(backend.search("slow", 2))
    second = asyncio.create_task(backend.search("slow", 2))  # joins in the same loop turn
    while not web.seen("serper"):  # cancel while the request is on the wire
        await asyncio.sleep(0.01)
    first.cancel()
    hits = await second
    assert first.cancelled() and [h.url for h in hits] == expected_urls("slow", 2)
    assert len(web.seen("serper")) == 1 and audit_of(hits)["coalesced"]
    await backend.aclose()


async def test_the_same_request_to_another_base_url_is_another_cache_entry(web, cache_path):
    with FakeWeb({"serper": KEY}) as other:
        here, there = cached(web, cache_path), cached(other, cache_path)
        assert audit_of(await here.search("oslo", 2))["cache"] == "miss"
        assert audit_of(await there.search("oslo", 2))["cache"] == "miss"  # not here's answer
        assert audit_of(await here.search("oslo", 2))["cache"] == "hit"
        assert audit_of(await there.search("oslo", 2))["cache"] == "hit"
        assert (len(web.seen("serper")), len(other.seen("serper"))) == (1, 1)
        await here.aclose()
        await there.aclose()
    request = {"query": "oslo", "k": 2}
    keys = {
        cache_key("serper", "search", request, base_url=u) for u in ("", "http://a", "http://b")
    }
    assert len(keys) == 3
    with sqlite3.connect(cache_path) as db:
        assert db.execute("SELECT count(*) FROM answers_v1").fetchone() == (1 + 1,)
