"""Page access against a loopback fake: Jina Reader, and direct fetch of HTML, PDF, odd charsets,
huge, slow and broken pages. Direct fetch reaches the fake only through the allow-listed name
`fake.test`, which the fake's own resolver maps to 127.0.0.1 (no real DNS)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from test_web_fakes import FakeWeb, Fault, tiny_pdf
from test_web_search_apis import Pauses
from wideseek.config import ToolsConfig
from wideseek.tools.search_tools import make_tools
from wideseek.tools.web import WebToolError, audit_of, open_web_backend
from wideseek.tools.web.page_readers import _jina_page
from wideseek.tools.web.page_text import decode_text, document_kind

KEY = "jina_test_key_777"
KEY_ENV = "WIDESEEK_TEST_JINA_KEY"

ARTICLE = """<!doctype html><html><head><title>Oslo - Wikipedia</title></head><body>
<nav><a href="/">Home</a> <a href="/random">Random article</a> <a href="/login">Log in</a></nav>
<main><article><h1>Oslo</h1>
<p>Oslo is the capital and most populous city of Norway. It constitutes both a county and a
municipality, and had a population of about 709,000 people in 2023.</p>
<p>The city lies at the head of the Oslofjord, surrounded by green hills and forests.</p>
<table><tr><th>Founded</th><td>1040</td></tr><tr><th>Area</th><td>454 km²</td></tr></table>
</article></main>
<footer>Text is available under a licence. Privacy policy. Cookie settings.</footer>
</body></html>"""


@pytest.fixture(scope="module")
def web() -> Iterator[FakeWeb]:
    with FakeWeb({"jina": KEY}) as server:
        server.page("oslo.html", ARTICLE)
        server.page(
            "doc.pdf",
            tiny_pdf("Bern is the federal city of Switzerland"),
            content_type="application/pdf",
        )
        yield server


@pytest.fixture(autouse=True)
def fresh(web: FakeWeb, monkeypatch: pytest.MonkeyPatch) -> None:
    web.reset()
    monkeypatch.setenv(KEY_ENV, KEY)


def direct(web: FakeWeb, **overrides):
    return open_web_backend(web.config(access="direct", **overrides), resolver=web.resolve)


# -- Jina Reader -------------------------------------------------------------------------------


async def test_jina_reads_a_url_with_the_bearer_key_and_keeps_its_final_url(web):
    backend = open_web_backend(web.config(KEY_ENV, access="jina"))
    page = await backend.access(web.site_url("oslo.html"))
    assert page.title == f"Title of {web.site_url('oslo.html')}"
    assert "capital and most populous city of Norway" in page.text
    (seen,) = web.seen("jina")
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    assert seen.headers["accept"] == "application/json"
    assert seen.path == f"/jina/{web.site_url('oslo.html')}"
    audit = audit_of(page)
    assert audit["backend"] == "jina" and audit["final_url"] == web.site_url("oslo.html")
    assert audit["status"] == 200 and audit["bytes"] > 0 and audit["cache"] == "off"
    # the model-facing tool keeps the audit in its data
    tools = make_tools("wideseek", "subagent", backend, ToolsConfig())
    result = await tools[1].call({"url": web.site_url("oslo.html")})
    assert not result.error and result.data["page"]["meta"]["audit"]["backend"] == "jina"


async def test_jina_without_a_key_sends_no_authorization_and_errors_are_clear(web, monkeypatch):
    web.keys.pop("jina")
    try:
        monkeypatch.delenv(KEY_ENV)
        backend = open_web_backend(web.config(KEY_ENV, access="jina"))
        await backend.access("https://example.com/")
        assert "authorization" not in web.seen("jina")[0].headers
        web.fail_next("jina", Fault(422, body=b'{"message": "No content available for URL"}'))
        with pytest.raises(WebToolError, match=r"jina: HTTP 422: .*No content available"):
            await backend.access("https://example.com/empty")
        with pytest.raises(WebToolError, match="only absolute http and https"):
            await backend.access("file:///etc/passwd")
    finally:
        web.keys["jina"] = KEY


def test_jina_plain_text_answers_are_read_too():
    body = (
        b"Title: Bern\n\nURL Source: https://e.org/bern\n\nMarkdown Content:\n# Bern\nFederal city."
    )
    page = _jina_page(body, "text/plain; charset=utf-8", "https://e.org/x", truncated=False)
    assert (page.url, page.title, page.text) == (
        "https://e.org/bern",
        "Bern",
        "# Bern\nFederal city.",
    )


# -- direct fetch: what a page becomes ---------------------------------------------------------


async def test_html_becomes_its_main_text_without_the_boilerplate(web):
    page = await direct(web).access(web.site_url("oslo.html"))
    assert page.title == "Oslo"
    assert "most populous city of Norway" in page.text and "Oslofjord" in page.text
    assert "1040" in page.text  # tables kept
    assert "Cookie settings" not in page.text and "Random article" not in page.text
    audit = audit_of(page)
    assert audit["backend"] == "direct" and audit["content_type"].startswith("text/html")
    assert audit["final_url"] == web.site_url("oslo.html") and not audit["truncated"]
    # the request went to the checked address, under the page's own host name
    assert web.seen("site")[0].headers["host"] == f"fake.test:{web.port}"


async def test_pdf_becomes_text(web):
    page = await direct(web).access(web.site_url("doc.pdf"))
    assert page.text == "Bern is the federal city of Switzerland"
    assert page.title == "Fake PDF"


async def test_a_pdf_without_a_content_type_is_recognised_by_its_bytes(web):
    web.page("untyped", tiny_pdf("Sniffed by its magic bytes"), content_type=None)
    page = await direct(web).access(web.site_url("untyped"))
    assert page.text == "Sniffed by its magic bytes"


async def test_a_pdf_cut_at_the_byte_cap_is_a_clear_error(web):
    web.page("big.pdf", tiny_pdf("x" * 3000), content_type="application/pdf")
    with pytest.raises(WebToolError, match=r"direct: .*PDF larger than the byte cap"):
        await direct(web, max_bytes=2048).access(web.site_url("big.pdf"))


@pytest.mark.parametrize(
    ("text", "encoding", "content_type"),
    [
        ("Москва — столица России.", "windows-1251", "text/html; charset=windows-1251"),
        ("東京は日本の首都である。", "shift_jis", "text/html"),  # only a <meta> says so
        ("Café crème, déjà vu, naïve façade, brûlée.", "cp1252", "text/html"),  # says nothing
        ("Zürich, Genève — 中文 — ünïcödé", "utf-8", "text/html"),  # UTF-8, undeclared
    ],
)
async def test_non_utf8_pages_are_decoded_by_their_charset(web, text, encoding, content_type):
    meta = '<meta charset="shift_jis">' if encoding == "shift_jis" else ""
    html = f"<html><head>{meta}<title>T</title></head><body><p>{text}</p></body></html>"
    web.page("charset.html", html.encode(encoding), content_type=content_type)
    page = await direct(web).access(web.site_url("charset.html"))
    assert text in page.text


def test_plain_text_decoding_order():
    assert decode_text("ab\u00e9".encode("utf-16"), None) == "abé"  # a BOM wins
    assert decode_text(b"caf\xe9", "text/plain; charset=ISO-8859-1") == "café"
    assert decode_text("déjà".encode() + b"\xc3", "text/plain", truncated=True) == "déjà"
    assert document_kind("application/octet-stream", b"%PDF-1.7 ...") == "pdf"


async def test_huge_pages_are_cut_at_the_byte_cap(web):
    backend = direct(web, max_bytes=100_000)
    page = await backend.access(web.site_url("huge"))
    audit = audit_of(page)
    assert audit["bytes"] == 100_000 and audit["truncated"]
    assert len(page.text) <= 100_000 and page.text.startswith("all work and no play")
    # the model-facing tool then cuts to page_chars, as for any backend
    tools = make_tools("wideseek", "subagent", backend, ToolsConfig(page_chars=500))
    result = await tools[1].call({"url": web.site_url("huge")})
    assert "[cut: 500 of" in result.text


async def test_types_without_text_are_refused(web):
    web.page("cat.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, content_type="image/png")
    with pytest.raises(WebToolError, match="direct: unsupported content type image/png"):
        await direct(web).access(web.site_url("cat.png"))


# -- direct fetch: faults ----------------------------------------------------------------------


async def test_a_page_that_drips_bytes_hits_the_time_limit_once_not_four_times(web):
    backend = direct(web, timeout_s=0.3)  # 4 attempts configured: a slow page gets one
    with pytest.raises(WebToolError) as failure:
        await backend.access(web.site_url("drip"))
    assert str(failure.value) == "direct: timed out (limit 0.3 s), after 1 attempt"
    audit = audit_of(failure.value)
    assert (audit["attempts"], audit["error_kind"]) == (1, "timeout")
    assert len(web.seen("site")) == 1


async def test_one_deadline_holds_for_the_whole_access(web):
    backend = direct(web, timeout_s=5.0, access_deadline_s=0.3)
    with pytest.raises(WebToolError) as failure:
        await backend.access(web.site_url("drip"))
    assert str(failure.value) == "direct: timed out (deadline 0.3 s per call), after 1 attempt"


async def test_no_retry_pause_runs_past_the_deadline(web):
    backend = direct(web, access_deadline_s=2.0)
    pauses = backend.reader.http.sleep = Pauses()
    web.fail_next("site", Fault(503, {"Retry-After": "10"}, body=b"busy"))
    with pytest.raises(WebToolError) as failure:
        await backend.access(web.site_url("oslo.html"))
    assert str(failure.value) == "direct: HTTP 503: busy, after 1 attempt"
    assert pauses.seen == [] and len(web.seen("site")) == 1


async def test_connect_errors_are_retried(web):
    with socket.socket() as placeholder:  # a loopback port that nobody listens on
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    backend = direct(web, direct={"allowed_hosts": [f"127.0.0.1:{port}"]}, retry={"attempts": 3})
    with pytest.raises(WebToolError, match=r"direct: unreachable \(ConnectError") as failure:
        await backend.access(f"http://127.0.0.1:{port}/")
    assert str(failure.value).endswith("after 3 attempts")
    audit = audit_of(failure.value)
    assert (audit["attempts"], audit["error_kind"]) == (3, "unreachable")


async def test_jina_page_reads_are_not_retried_on_a_timeout_either(web):
    backend = open_web_backend(web.config(KEY_ENV, access="jina", timeout_s=0.2))
    web.fail_next("jina", Fault(200, delay_s=1.0))
    with pytest.raises(WebToolError, match=r"jina: timed out \(limit 0.2 s\), after 1 attempt$"):
        await backend.access("https://example.com/slow")
    assert len(web.seen("jina")) == 1


@pytest.mark.parametrize(
    ("path", "overrides", "attempts", "kind"),
    [
        ("busy", {"retry": {"attempts": 3}}, 3, "http_status"),
        ("missing", {}, 1, "http_status"),
        ("cat.png", {}, 1, "unsupported_type"),
        ("big.pdf", {"max_bytes": 2048}, 1, "too_large"),
        ("ok", {"direct": {"allowed_hosts": []}}, 1, "refused_by_guard"),
        ("file:///etc/passwd", {}, 0, "refused_by_guard"),  # refused before any try
        ("http://[::1", {}, 0, "bad_url"),
    ],
)
async def test_failures_record_their_attempts_and_kind(web, path, overrides, attempts, kind):
    web.page("ok", ARTICLE)
    web.page("cat.png", b"\x89PNG\r\n\x1a\n", content_type="image/png")
    web.page("big.pdf", tiny_pdf("x" * 3000), content_type="application/pdf")
    if path == "busy":
        web.fail_next("site", *[Fault(503, body=b"busy")] * 3)
    url = path if ":" in path else web.site_url(path)
    with pytest.raises(WebToolError) as failure:
        await direct(web, **overrides).access(url)
    audit = audit_of(failure.value)
    assert (audit["attempts"], audit["error_kind"]) == (attempts, kind), failure.value
    assert audit["error"] == str(failure.value)


async def test_a_503_then_success_is_retried_and_a_404_is_not(web):
    backend = direct(web)
    web.fail_next("site", Fault(503, {"Retry-After": "0"}))
    page = await backend.access(web.site_url("oslo.html"))
    assert audit_of(page)["attempts"] == 2 and "Oslofjord" in page.text
    with pytest.raises(WebToolError, match="direct: HTTP 404: no such page") as failure:
        await backend.access(web.site_url("missing"))
    assert len(web.seen("site")) == 3
    assert audit_of(failure.value)["error"].startswith("direct: HTTP 404")


async def test_redirects_are_followed_hop_by_hop_and_recorded(web):
    web.page("old", status=301, location="/site/older")
    web.page("older", status=302, location=web.site_url("oslo.html"))
    page = await direct(web).access(web.site_url("old") + "#section")
    audit = audit_of(page)
    assert audit["final_url"] == web.site_url("oslo.html") and audit["redirects"] == 2
    assert page.url == web.site_url("oslo.html") and "Oslofjord" in page.text
    assert [s.path for s in web.seen("site")] == ["/site/old", "/site/older", "/site/oslo.html"]


async def test_a_redirect_loop_stops_at_the_limit(web):
    web.page("ping", status=302, location="/site/pong")
    web.page("pong", status=302, location="/site/ping")
    backend = direct(web, direct={"max_redirects": 3})
    with pytest.raises(WebToolError, match="direct: more than 3 redirects"):
        await backend.access(web.site_url("ping"))
    assert len(web.seen("site")) == 4
