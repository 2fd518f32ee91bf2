"""The fetch guard's holes, closed: URL tricks, origin-style allow-lists (by host, host:port and
CIDR), redirects to another service or port, and cached pages judged by today's policy.

A second loopback listener (`HitCounter`) stands for the service nobody should reach: every
refusal must leave it at 0 connections. No traffic leaves 127.0.0.0/8 or [::1]: the resolver
below answers only loopback addresses, and a spy on httpx refuses to send anything else."""

from __future__ import annotations

import ipaddress
import socket
import sqlite3
from collections.abc import Iterator

import httpx
import pytest

from test_web_fakes import FakeWeb, HitCounter
from wideseek.tools.web import WebToolError, audit_of, open_web_backend
from wideseek.tools.web.backend import normalise_url
from wideseek.tools.web.cache import WebCache, cache_key

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


@pytest.fixture(scope="module")
def web() -> Iterator[FakeWeb]:
    with FakeWeb() as server:
        server.page("ok", "<html><body><p>The allowed page.</p></body></html>")
        yield server


@pytest.fixture(scope="module")
def counter() -> Iterator[HitCounter]:
    with HitCounter() as listener:
        yield listener


@pytest.fixture(autouse=True)
def loopback_only(web: FakeWeb, counter: HitCounter, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fresh counts, and no request sent to anything but a loopback address (checked BEFORE
    sending, so a guard that failed open still cannot reach out)."""
    web.reset()
    counter.reset()
    original = httpx.AsyncClient.send

    async def spy(self: httpx.AsyncClient, request: httpx.Request, **kw):  # type: ignore[no-untyped-def]
        address = ipaddress.ip_address(request.url.host)
        assert address in LOOPBACK or address == ipaddress.ip_address("::1"), request.url
        return await original(self, request, **kw)

    monkeypatch.setattr(httpx.AsyncClient, "send", spy)


async def loopback_resolver(host: str, port: int) -> list[str]:
    """Names as the system would read them, but only ever a loopback answer."""
    named = {"fake.test": ["127.0.0.1"], "counter.test": ["127.0.0.1"]}
    named["localhost"] = ["127.0.0.1", "::1"]
    if host in named:
        return named[host]
    try:  # 0x7f000001, 2130706433, 017700000001, 127.1: inet_aton reads them as getaddrinfo does
        answer = socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        raise OSError(f"test DNS has no {host}") from None
    if ipaddress.ip_address(answer) not in LOOPBACK:
        raise OSError(f"test DNS answers only loopback addresses, not {answer}")
    return [answer]


def backend(web: FakeWeb, allowed: list[str], **overrides):
    cfg = web.config(access="direct", direct={"allowed_hosts": allowed}, **overrides)
    return open_web_backend(cfg, resolver=loopback_resolver)


# Allow-lists that let the fake (fake.test, 127.0.0.1, port P) through and must not let anything
# reach the counter (port C): ports named, or left to the scheme's default (80/443).
ALLOW_LISTS = {
    "host": lambda p: [f"fake.test:{p}", "localhost", "counter.test", "fake.test"],
    "host:port": lambda p: [f"fake.test:{p}", f"127.0.0.1:{p}", f"localhost:{p}", f"[::1]:{p}"],
    "cidr": lambda p: [f"127.0.0.0/8:{p}", f"[::1/128]:{p}", "127.0.0.0/8", "::1/128"],
}

# Every trick of the issue, each aimed at the counter's port C: (URL, the error kind expected).
TRICKS = [
    ("http://127.0.0.1:C/secret", "refused_by_guard"),
    ("http://localhost:C/secret", "refused_by_guard"),
    ("http://localhost.:C/secret", "refused_by_guard"),
    ("http://LOCALHOST:C/secret", "refused_by_guard"),
    ("http://127.0.0.1.:C/secret", "refused_by_guard"),
    ("http://counter.test:C/secret", "refused_by_guard"),
    ("http://0x7f000001:C/secret", "refused_by_guard"),  # hexadecimal
    ("http://2130706433:C/secret", "refused_by_guard"),  # decimal
    ("http://017700000001:C/secret", "refused_by_guard"),  # octal, one number
    ("http://0177.0.0.1:C/secret", "bad_url"),  # octal, dotted: not a URL httpx opens
    ("http://127.1:C/secret", "refused_by_guard"),
    ("http://fake.test:P@127.0.0.1:C/secret", "refused_by_guard"),  # userinfo
    ("http://user:pw@127.0.0.1:C/secret", "refused_by_guard"),
    ("http://[::1]:C/secret", "refused_by_guard"),
    ("http://[::]:C/secret", "refused_by_guard"),
    ("http://0.0.0.0:C/secret", "refused_by_guard"),
    ("http://[::ffff:127.0.0.1]:C/secret", "refused_by_guard"),  # IPv4-mapped
    ("http://[0:0:0:0:0:ffff:7f00:1]:C/secret", "refused_by_guard"),
    ("http://[::127.0.0.1]:C/secret", "refused_by_guard"),  # IPv4-compatible
    ("http://[2002:7f00:1::]:C/secret", "refused_by_guard"),  # 6to4 of 127.0.0.1
    ("http://[64:ff9b::7f00:1]:C/secret", "refused_by_guard"),  # NAT64
    ("http://[64:ff9b:1::7f00:1]:C/secret", "refused_by_guard"),  # local-use NAT64
    ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]:C/secret", "refused_by_guard"),  # Teredo
    ("http://[fe80::1%25lo]:C/secret", "refused_by_guard"),
    ("http://169.254.169.254:C/latest/meta-data/", "refused_by_guard"),
    ("http://10.0.0.1:C/secret", "refused_by_guard"),
    ("http://%31%32%37.0.0.1:C/secret", "dns"),  # percent-encoded: no such name
    ("https://127.0.0.1:C/secret", "refused_by_guard"),
    ("file:///etc/passwd", "refused_by_guard"),
]


def aimed(trick: str, web: FakeWeb, counter: HitCounter) -> str:
    return trick.replace(":C/", f":{counter.port}/").replace(":P@", f":{web.port}@")


@pytest.mark.parametrize("style", ALLOW_LISTS)
@pytest.mark.parametrize(("trick", "kind"), TRICKS)
async def test_every_trick_is_refused_as_the_first_url(web, counter, style, trick, kind):
    guarded = backend(web, ALLOW_LISTS[style](web.port))
    with pytest.raises(WebToolError) as failure:
        await guarded.access(aimed(trick, web, counter))
    assert audit_of(failure.value)["error_kind"] == kind, failure.value
    assert counter.hits == 0 and web.requests == []


@pytest.mark.parametrize("style", ALLOW_LISTS)
@pytest.mark.parametrize(("trick", "kind"), TRICKS)
async def test_every_trick_is_refused_as_a_redirect_hop(web, counter, style, trick, kind):
    web.page("jump", status=302, location=aimed(trick, web, counter))
    guarded = backend(web, ALLOW_LISTS[style](web.port))
    with pytest.raises(WebToolError) as failure:
        await guarded.access(web.site_url("jump"))
    audit = audit_of(failure.value)
    assert audit["error_kind"] == kind, failure.value
    assert audit["attempts"] == 1 and str(failure.value).startswith("direct: ")
    assert kind == "dns" or str(failure.value).startswith("direct: refused")
    if kind == "refused_by_guard":  # the refused hop is named, and where it came from
        assert f"(redirected from {web.site_url('jump')})" in str(failure.value)
    assert counter.hits == 0
    assert [s.path for s in web.seen("site")] == ["/site/jump"]


@pytest.mark.parametrize("style", ALLOW_LISTS)
async def test_the_allowed_origin_itself_is_reached(web, counter, style):
    page = await backend(web, ALLOW_LISTS[style](web.port)).access(web.site_url("ok"))
    assert page.text == "The allowed page."
    (hop,) = audit_of(page)["chain"]
    assert hop == {"url": web.site_url("ok"), "addresses": ["127.0.0.1"]}


async def test_an_entry_without_a_port_allows_only_the_default_port(web, counter):
    for allowed in (["fake.test"], ["127.0.0.1"], ["127.0.0.0/8"]):
        with pytest.raises(WebToolError, match=f"add fake.test:{web.port} to direct.allowed"):
            await backend(web, allowed).access(web.site_url("ok"))
    assert web.requests == []


async def test_a_redirect_to_another_port_of_an_allowed_address_is_refused(web, counter):
    # the case: one local service allowed by address, another one behind a redirect
    web.page("to-other", status=302, location=f"http://localhost:{counter.port}/secret")
    start = f"http://127.0.0.1:{web.port}/site/to-other"
    with pytest.raises(WebToolError, match=r"host localhost resolves to a loopback address"):
        await backend(web, [f"127.0.0.1:{web.port}"]).access(start)
    assert counter.hits == 0
    # named, the other service is reachable: the counter does count
    both = [f"127.0.0.1:{web.port}", f"localhost:{counter.port}"]
    page = await backend(web, both).access(start)
    assert HitCounter.SECRET in page.text and counter.hits == 1
    assert [hop["url"] for hop in audit_of(page)["chain"]] == [
        start,
        f"http://localhost:{counter.port}/secret",
    ]


# -- the guard on cached pages ----------------------------------------------------------------


@pytest.mark.parametrize("style", ALLOW_LISTS)
async def test_a_page_cached_under_a_permissive_policy_is_not_served_under_a_strict_one(
    web, counter, style, tmp_path
):
    web.page("jump", status=302, location=f"http://localhost:{counter.port}/secret")
    strict = ALLOW_LISTS[style](web.port)
    cache = {"cache": True, "cache_path": tmp_path / "web.sqlite"}
    loose = backend(web, [*strict, f"localhost:{counter.port}"], **cache)
    page = await loose.access(web.site_url("jump"))
    assert HitCounter.SECRET in page.text
    counter.reset()
    web.reset()
    guarded = backend(web, strict, **cache)
    with pytest.raises(WebToolError, match=r"\(a cached page, checked again today\)") as failure:
        await guarded.access(web.site_url("jump"))
    audit = audit_of(failure.value)
    assert (audit["cache"], audit["error_kind"], audit["attempts"]) == (
        "hit",
        "refused_by_guard",
        0,
    )
    assert counter.hits == 0 and web.requests == []  # neither served nor fetched again
    # the loose policy still gets its cached page, and the strict one its own allowed pages
    assert audit_of(await loose.access(web.site_url("jump")))["cache"] == "hit"
    await guarded.access(web.site_url("ok"))
    assert audit_of(await guarded.access(web.site_url("ok")))["cache"] == "hit"
    assert counter.hits == 0 and len(web.seen("site")) == 1


async def test_replay_refuses_a_cached_page_todays_policy_refuses(web, counter, tmp_path):
    web.page("jump", status=302, location=f"http://127.0.0.1:{counter.port}/secret")
    cache = {"cache": True, "cache_path": tmp_path / "web.sqlite"}
    await backend(web, [web.origin, f"127.0.0.1:{counter.port}"], **cache).access(
        web.site_url("jump")
    )
    counter.reset()
    replay = backend(web, [web.origin], replay=True, **cache)
    with pytest.raises(WebToolError, match=r"127\.0\.0\.1 is a loopback address"):
        await replay.access(web.site_url("jump"))
    assert counter.hits == 0


async def test_a_cached_page_without_a_recorded_chain_is_a_miss(web, counter, tmp_path):
    # an entry as older versions wrote it: the page's text, no chain to check it by
    path = tmp_path / "web.sqlite"
    old = WebCache(path, ttl_s=3600)
    for name, text in (("jump", HitCounter.SECRET), ("ok", "stale text")):
        url = normalise_url(web.site_url(name))
        fetch = {"status": 200, "final_url": url, "redirects": 0, "bytes": 9}
        value = {"value": {"url": url, "title": "", "text": text}, "fetch": fetch}
        key = cache_key("direct", "access", {"url": url}, base_url="")
        await old.put(key, backend="direct", kind="access", request=url, value=value)
    old.close()
    web.page("jump", status=302, location=f"http://localhost:{counter.port}/secret")
    guarded = backend(web, [web.origin], cache=True, cache_path=path)
    with pytest.raises(WebToolError, match="host localhost resolves to a loopback address"):
        await guarded.access(web.site_url("jump"))  # fetched again, and refused on the way
    page = await guarded.access(web.site_url("ok"))
    assert page.text == "The allowed page." and audit_of(page)["cache"] == "miss"
    assert counter.hits == 0
    with sqlite3.connect(path) as db:  # the refetched page replaced the old entry, chain and all
        (blob,) = db.execute("SELECT value FROM answers_v1 WHERE request LIKE '%/ok'").fetchone()
    assert '"chain"' in blob
    replay = backend(web, [web.origin], cache=True, cache_path=path, replay=True)
    with pytest.raises(WebToolError, match="the cached one has no record to check it by today"):
        await replay.access(web.site_url("jump"))  # the old entry: not trusted, not fetched
    assert counter.hits == 0
