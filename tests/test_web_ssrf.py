"""The SSRF guard of direct fetch: private, loopback and link-local targets are refused before any
connection — on the first URL and on every redirect hop — unless explicitly allowed.

No request in this file goes to a non-loopback address: every one that httpx sends is recorded
by a spy and checked, and names resolve through a fake resolver, never real DNS."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

import httpx
import pytest

from test_web_fakes import FakeWeb
from wideseek.config import ConfigError, load_config
from wideseek.tools.web import BlockedUrlError, WebToolError, audit_of, open_web_backend
from wideseek.tools.web.ssrf_guard import HostGuard, address_problem, embedded_ipv4s
from wideseek.web_allow_list import parse_allow_rule


@pytest.fixture(scope="module")
def web() -> Iterator[FakeWeb]:
    with FakeWeb() as server:
        server.page("ok", "<html><body><p>You reached the fake site.</p></body></html>")
        yield server


@pytest.fixture(autouse=True)
def sent(web: FakeWeb, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[httpx.URL]]:
    """Every URL httpx actually sends; after the test, all of them must be on 127.0.0.1."""
    web.reset()
    web.dns.clear()
    urls: list[httpx.URL] = []
    original = httpx.AsyncClient.send

    async def spy(self: httpx.AsyncClient, request: httpx.Request, **kw):  # type: ignore[no-untyped-def]
        urls.append(request.url)
        return await original(self, request, **kw)

    monkeypatch.setattr(httpx.AsyncClient, "send", spy)
    yield urls
    assert all(url.host == "127.0.0.1" for url in urls), urls


def backend(web: FakeWeb, allowed: list[str] | None = None):
    direct = {"allowed_hosts": [web.origin] if allowed is None else allowed}
    return open_web_backend(web.config(access="direct", direct=direct), resolver=web.resolve)


@pytest.mark.parametrize(
    ("location", "refusal"),
    [
        ("http://10.0.0.7/admin", "10.0.0.7 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://192.168.1.1/", "192.168.1.1 is a private address"),
        ("http://[::1]:8080/", "::1 is a loopback address"),
        ("http://0.0.0.0/", "0.0.0.0 is an unspecified address"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://fake.test:70/", "only http and https"),
    ],
)
async def test_a_redirect_to_a_private_address_is_refused_before_connecting(
    web, sent, location, refusal
):
    web.page("jump", status=302, location=location)
    with pytest.raises(BlockedUrlError, match=re.escape(refusal)) as failure:
        await backend(web).access(web.site_url("jump"))
    assert [url.path for url in sent] == ["/site/jump"]  # the redirect hop was never sent
    assert str(failure.value).startswith("direct: refused")
    assert audit_of(failure.value)["error"] == str(failure.value)


async def test_a_redirect_to_127_0_0_1_is_refused_when_only_the_name_is_allowed(web, sent):
    # The fake really listens on 127.0.0.1: the refusal is the guard's, not a dead port.
    web.page("to-loopback", status=302, location=f"http://127.0.0.1:{web.port}/site/ok")
    with pytest.raises(BlockedUrlError, match=r"127\.0\.0\.1 is a loopback address"):
        await backend(web).access(web.site_url("to-loopback"))
    assert [url.path for url in sent] == ["/site/to-loopback"]
    assert [s.path for s in web.seen("site")] == ["/site/to-loopback"]


async def test_a_name_that_resolves_to_a_private_address_is_refused(web, sent):
    web.dns["intranet.example"] = ["192.168.7.7"]
    web.dns["mixed.example"] = ["93.184.215.14", "10.1.2.3"]  # one bad answer is enough
    web.page("to-intranet", status=307, location="http://intranet.example/wiki")
    with pytest.raises(
        BlockedUrlError,
        match=r"host intranet\.example resolves to a private address \(192\.168\.7\.7\)",
    ):
        await backend(web).access(web.site_url("to-intranet"))
    with pytest.raises(
        BlockedUrlError, match=r"host mixed\.example resolves to a private address \(10\.1\.2\.3\)"
    ):
        await backend(web).access("https://mixed.example/")
    assert [url.path for url in sent] == ["/site/to-intranet"]


async def test_without_the_allow_list_even_the_first_url_is_refused(web, sent):
    with pytest.raises(BlockedUrlError, match=r"host fake\.test resolves to a loopback address"):
        await backend(web, allowed=[]).access(web.site_url("ok"))
    assert sent == []


async def test_an_allowed_network_lets_the_literal_address_through_on_its_port(web):
    page = await backend(web, allowed=[f"127.0.0.0/8:{web.port}"]).access(
        f"http://127.0.0.1:{web.port}/site/ok"
    )
    assert "You reached the fake site." in page.text


async def test_credentials_in_urls_are_refused(web, sent):
    with pytest.raises(BlockedUrlError, match="credentials in URLs"):
        await backend(web).access(f"http://user:secret@fake.test:{web.port}/site/ok")
    assert sent == []


async def test_a_public_host_is_pinned_to_the_address_that_was_checked():
    async def resolver(host: str, port: int) -> list[str]:
        assert (host, port) == ("example.com", 443)
        return ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]

    target = await HostGuard([], resolver).check(httpx.URL("https://Example.com/a?b=1"))
    assert str(target.url) == "https://93.184.215.14/a?b=1"  # connect to what was checked...
    assert target.headers == {"Host": "example.com"}  # ...but ask for the named site
    assert target.extensions == {"sni_hostname": "example.com"}  # and check its certificate


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("169.254.169.254", "link-local"),
        ("224.0.0.251", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "non-global"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("::ffff:10.0.0.1", "private"),  # IPv4-mapped IPv6 is unwrapped
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1 (Python calls it global)
        ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 of 169.254.169.254
        ("2002:808:808::", None),  # 6to4 of 8.8.8.8
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("64:ff9b::808:808", None),  # NAT64 of 8.8.8.8
        ("64:ff9b:1::7f00:1", "loopback"),  # local-use NAT64, /96 layout
        ("64:ff9b:1:7f00:0:100:808:808", "loopback"),  # /96: 8.8.8.8, but /48: 127.0.0.1
        ("64:ff9b:1:808:8:800:a00:1", "private"),  # public in one layout, private in another
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"),  # Teredo, client 127.0.0.1
        ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", None),  # Teredo, client 8.8.8.8
        ("::127.0.0.1", "reserved"),  # IPv4-compatible (deprecated) is reserved space
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_address_categories(address, problem):
    assert address_problem(ipaddress.ip_address(address)) == problem


@pytest.mark.parametrize(
    ("address", "carried"),
    [
        ("::ffff:127.0.0.1", ["127.0.0.1"]),
        ("2002:c000:0201::1", ["192.0.2.1"]),
        ("64:ff9b::192.0.2.33", ["192.0.2.33"]),
        # local-use NAT64 prefixes may be /48, /56, /64 or /96: every layout is judged
        ("64:ff9b:1:c000:2:2100::", ["0.0.0.0", "192.0.2.33", "0.2.33.0", "2.33.0.0"]),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", ["192.0.2.45"]),  # RFC 4380's example
        ("2606:4700:4700::1111", []),
        ("10.0.0.1", []),
    ],
)
def test_the_ipv4_addresses_an_ipv6_address_carries(address, carried):
    assert [str(ip) for ip in embedded_ipv4s(ipaddress.ip_address(address))] == carried


# -- allow-list entries -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "name", "network", "port"),
    [
        ("Fake.Test", "fake.test", None, None),
        ("fake.test.:8080", "fake.test", None, 8080),
        ("localhost", "localhost", None, None),
        ("127.0.0.1", None, "127.0.0.1/32", None),
        ("127.0.0.1:8080", None, "127.0.0.1/32", 8080),
        ("10.1.2.3/8", None, "10.0.0.0/8", None),
        ("10.0.0.0/8:443", None, "10.0.0.0/8", 443),
        ("::1", None, "::1/128", None),
        ("[::1]", None, "::1/128", None),
        ("[::1]:8080", None, "::1/128", 8080),
        ("fd00::/8", None, "fd00::/8", None),
        ("[fd00::/8]:8080", None, "fd00::/8", 8080),
    ],
)
def test_allow_list_entries(entry, name, network, port):
    rule = parse_allow_rule(entry)
    assert (rule.name, rule.network and str(rule.network), rule.port) == (name, network, port)


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("", "empty"),
        ("fake.test:99999", "bad port '99999'"),
        ("fake.test:", "bad port ''"),
        ("fake.test:http", "bad port 'http'"),
        ("http://fake.test", "bad port '//fake.test'"),
        ("*.example.com", "not a host name"),
        ("fake.test/path", "bad address or network"),
        ("10.0.0.0/33", "bad address or network"),
        ("10.0.0.256", "not a valid IP address"),
        ("[127.0.0.1]:80", "only IPv6 addresses go in brackets"),
        ("[::1", "no closing ]"),
        ("[::1]8080", "only :port may follow ]"),
        ("::1::2", "bad address or network"),
    ],
)
def test_malformed_allow_list_entries_are_one_line_errors(entry, why):
    with pytest.raises(ValueError) as failure:
        parse_allow_rule(entry)
    message = str(failure.value)
    assert message.startswith(f"allow-list entry {entry!r}: {why}") and "\n" not in message
    with pytest.raises(ConfigError) as failure:
        load_config(None, [f"tools.web.direct.allowed_hosts=[{entry!r}]"])
    assert "tools.web.direct.allowed_hosts" in str(failure.value) and why in str(failure.value)
    with pytest.raises(WebToolError, match=r"direct\.allowed_hosts: allow-list entry"):
        HostGuard([entry])  # code that skipped the config gets the same line


def test_an_entry_without_a_port_is_an_origin_on_the_default_port():
    loopback = ipaddress.ip_address("127.0.0.1")
    plain, named = parse_allow_rule("fake.test"), parse_allow_rule("fake.test:8080")
    assert plain.matches("fake.test", loopback, "http", 80)
    assert plain.matches("fake.test", loopback, "https", 443)
    assert not plain.matches("fake.test", loopback, "http", 443)
    assert not plain.matches("fake.test", loopback, "http", 8080)
    assert named.matches("fake.test", loopback, "http", 8080)
    assert named.matches("fake.test", loopback, "https", 8080)
    assert not named.matches("other.test", loopback, "http", 8080)
    network = parse_allow_rule("127.0.0.0/8:8080")
    assert network.matches("anything", loopback, "http", 8080)
    assert not network.matches("anything", ipaddress.ip_address("::1"), "http", 8080)
