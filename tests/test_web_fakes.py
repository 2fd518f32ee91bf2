"""`FakeWeb`: one loopback server speaking every web API wideseek uses, with scripted faults.

A test double (tests/ holds test doubles; this file also tests the double itself) for the
tests/test_web_*.py files and `bench/web_cache.py`; needs starlette and uvicorn (dev extra).
`with FakeWeb(keys) as web:` serves on 127.0.0.1 (free port, uvicorn in a thread):

- POST /serper/search, GET /brave/web/search, POST /tavily/search, GET /searxng/search:
  each API's request and answer shape, with results made from the query (`expected_urls`);
  a wrong or missing key gets 401 with the presented key echoed back (as some real services
  do), which tests use to prove the client scrubs it from error texts.
- GET /jina/<url>: Jina Reader's JSON answer (or its plain-text form without
  `Accept: application/json`), the content taken from `pages` when the URL is one of ours.
- GET /site/<path>: pages served as given by `page(...)` (status, type, raw bytes, a
  redirect), plus /site/huge (streams `huge_bytes`) and /site/drip (a byte every 50 ms).

`HitCounter` is a second loopback listener that only counts connections: the target of
redirects and URL tricks the SSRF guard must refuse.

Faults: `fail_next(route, Fault(...), ...)` makes the next requests to a route ("serper",
"brave", "tavily", "searxng", "jina", "site") answer a status with headers (429 with
Retry-After, 500), stall for `delay_s`, or cut the body short of its Content-Length.
`requests` records every request (route, path, headers); `max_in_flight` the most
concurrent ones per route. Knows nothing of wideseek's clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import socket
import socketserver
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
import pypdf
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from wideseek.serving import BackgroundServer
from wideseek.web_config import WebToolsConfig

ROUTES = ("serper", "brave", "tavily", "searxng", "jina", "site")


@dataclass
class Fault:
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"error": "injected fault"}'
    delay_s: float = 0.0  # stall before answering (timeouts)
    cut: bool = False  # answer 200 but close the connection mid-body


@dataclass
class Seen:
    route: str
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class SitePage:
    body: bytes = b""
    content_type: str | None = "text/html; charset=utf-8"
    status: int = 200
    location: str | None = None


class _CutResponse(Response):
    """Promises more bytes than it sends, then ends: the client sees a body cut short."""

    def __init__(self, body: bytes) -> None:
        super().__init__(body, media_type="application/json")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"100000")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.body[:20], "more_body": True})
        raise ConnectionResetError("fake web: cutting the body short")


def results_for(query: str, n: int) -> list[dict[str, Any]]:
    slug = "-".join(query.lower().split()) or "empty"
    return [
        {
            "title": f"{query} — result {i}",
            "url": f"https://example.org/{slug}/{i}",
            "snippet": f"Snippet {i} about {query}.",
            "score": round(1.0 - i / 100, 3),
        }
        for i in range(1, n + 1)
    ]


def expected_urls(query: str, n: int) -> list[str]:
    return [r["url"] for r in results_for(query, n)]


def tiny_pdf(text: str, title: str = "Fake PDF") -> bytes:
    """A valid one-page PDF showing `text` in Helvetica (ASCII), with a Title in its info."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< /Title ({title}) >>".encode("latin-1"),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


class FakeWeb(BackgroundServer):
    def __init__(
        self,
        keys: dict[str, str] | None = None,
        huge_bytes: int = 20_000_000,
        latency_s: float = 0.01,
    ) -> None:
        self.keys = keys or {}  # route -> the key it accepts; a route without one takes any
        self.huge_bytes = huge_bytes
        self.latency_s = latency_s  # each API answer waits this long, so callers overlap
        self.pages: dict[str, SitePage] = {}
        self.dns: dict[str, list[str]] = {}  # extra names for `resolve`
        self.requests: list[Seen] = []
        self.max_in_flight: dict[str, int] = defaultdict(int)
        self._in_flight: dict[str, int] = defaultdict(int)
        self._faults: dict[str, list[Fault]] = defaultdict(list)
        self._generation = 0
        self._lock = threading.Lock()
        app = Starlette(
            routes=[
                Route("/serper/search", self._serper, methods=["POST"]),
                Route("/brave/web/search", self._brave),
                Route("/tavily/search", self._tavily, methods=["POST"]),
                Route("/searxng/search", self._searxng),
                Route("/jina/{target:path}", self._jina),
                Route("/site/{path:path}", self._site),
            ]
        )
        super().__init__(app, log_level="critical", http="h11")

    # -- pointing clients at it ----------------------------------------------------------

    HOST = "fake.test"  # a name only `resolve` knows; configs allow-list `origin` for direct fetch

    @property
    def origin(self) -> str:
        """The allow-list entry for this server: its name and port (origin-style)."""
        return f"{self.HOST}:{self.port}"

    def site_url(self, path: str) -> str:
        return f"http://{self.HOST}:{self.port}/site/{path.lstrip('/')}"

    async def resolve(self, host: str, port: int) -> list[str]:
        """A resolver for `HostGuard`: `HOST` is 127.0.0.1, `dns` adds names; no real DNS."""
        answers = {self.HOST: ["127.0.0.1"], **self.dns}
        if host not in answers:
            raise OSError(f"fake DNS has no {host}")
        return answers[host]

    def config(self, key_env: str | None = None, **overrides: Any) -> WebToolsConfig:
        """A WebToolsConfig with every backend on this server, no cache, no rate limit, tiny
        retry pauses.
        A dict override of a section (`retry={...}`) updates that section's defaults here."""

        def api(route: str, **kw: Any) -> dict[str, Any]:
            return {"base_url": f"{self.url}/{route}", "key_env": key_env, "rate_per_s": 0, **kw}

        settings: dict[str, Any] = {
            "serper": api("serper"),
            "brave": api("brave"),
            "tavily": api("tavily"),
            "searxng": api("searxng", key_required=False),
            "jina": api("jina", key_required=False),
            "direct": {"allowed_hosts": [self.origin]},
            "retry": {"backoff_s": 0.001, "max_backoff_s": 0.004, "jitter_s": 0.001},
            "timeout_s": 5.0,
            "cache": False,
            "check_url": self.site_url("check"),
        }
        for name, value in overrides.items():
            if isinstance(value, dict) and isinstance(settings.get(name), dict):
                settings[name] = {**settings[name], **value}
            else:
                settings[name] = value
        return WebToolsConfig(**settings)

    # -- scripting -----------------------------------------------------------------------

    def fail_next(self, route: str, *faults: Fault) -> None:
        with self._lock:
            self._faults[route].extend(faults)

    def page(self, path: str, body: bytes | str = b"", **kw: Any) -> None:
        raw = body.encode("utf-8") if isinstance(body, str) else body
        self.pages[path.lstrip("/")] = SitePage(body=raw, **kw)

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self.requests.clear()
            self.max_in_flight.clear()
            self._in_flight.clear()
            self._generation += 1

    def seen(self, route: str) -> list[Seen]:
        return [r for r in self.requests if r.route == route]

    # -- shared request handling ---------------------------------------------------------

    async def _enter(self, route: str, request: Request) -> Response | None:
        """Record the request; a scripted fault or a bad key answers instead of the API."""
        body = await request.body()
        seen = Seen(
            route, request.method, request.url.path, request.url.query, dict(request.headers), body
        )
        with self._lock:
            self.requests.append(seen)
            fault = self._faults[route].pop(0) if self._faults[route] else None
        if fault is not None:
            await asyncio.sleep(fault.delay_s)
            if fault.cut:
                return _CutResponse(b'{"organic": [{"title": "cut short"}]}')
            if fault.delay_s and fault.status == 200:
                return None
            return Response(fault.body, fault.status, fault.headers, "application/json")
        expected = self.keys.get(route)
        if expected is not None:
            presented = _presented_key(route, request)
            if presented != expected:
                message = f"invalid API key {presented!r}"  # the echo a client must scrub
                return JSONResponse({"message": message}, status_code=401)
        return None

    async def _run(self, route: str, request: Request, answer: Any) -> Response:
        # Handlers share one event loop: no lock needed. A handler still stalling from before
        # a reset belongs to an older generation and is not counted.
        generation = self._generation
        self._in_flight[route] += 1
        self.max_in_flight[route] = max(self.max_in_flight[route], self._in_flight[route])
        try:
            early = await self._enter(route, request)
            if early is not None:
                return early
            if route != "site":
                await asyncio.sleep(self.latency_s)
            return await answer()
        finally:
            if generation == self._generation:
                self._in_flight[route] -= 1

    # -- the APIs ------------------------------------------------------------------------

    async def _serper(self, request: Request) -> Response:
        async def answer() -> Response:
            body = json.loads(await request.body())
            results = results_for(body["q"], int(body.get("num", 10)))
            organic = [
                {"title": r["title"], "link": r["url"], "snippet": r["snippet"], "position": i}
                for i, r in enumerate(results, 1)
            ]
            organic.reverse()  # ranks are given by `position`, not list order
            return JSONResponse({"searchParameters": {"q": body["q"]}, "organic": organic})

        return await self._run("serper", request, answer)

    async def _brave(self, request: Request) -> Response:
        async def answer() -> Response:
            q, n = request.query_params["q"], int(request.query_params.get("count", 20))
            results = [
                {
                    "title": r["title"],
                    "url": r["url"],
                    "description": r["snippet"].replace("about", "about <strong>") + "</strong>",
                }
                for r in results_for(q, n)
            ]
            return JSONResponse({"type": "search", "web": {"type": "search", "results": results}})

        return await self._run("brave", request, answer)

    async def _tavily(self, request: Request) -> Response:
        async def answer() -> Response:
            body = json.loads(await request.body())
            results = [
                {"title": r["title"], "url": r["url"], "content": r["snippet"], "score": r["score"]}
                for r in results_for(body["query"], int(body.get("max_results", 5)))
            ]
            return JSONResponse({"query": body["query"], "results": results, "answer": None})

        return await self._run("tavily", request, answer)

    async def _searxng(self, request: Request) -> Response:
        async def answer() -> Response:
            if request.query_params.get("format") != "json":
                return Response("format not enabled", 403)
            q = request.query_params["q"]
            results = [
                {
                    "title": r["title"],
                    "url": r["url"],
                    "content": r["snippet"],
                    "score": r["score"],
                    "engine": "fake",
                }
                for r in results_for(q, 20)
            ]
            return JSONResponse({"query": q, "number_of_results": 20, "results": results})

        return await self._run("searxng", request, answer)

    async def _jina(self, request: Request) -> Response:
        async def answer() -> Response:
            target = request.url.path.removeprefix("/jina/")
            if request.url.query:
                target += "?" + request.url.query
            _, ours, path = target.partition(f":{self.port}/site/")  # a URL of this server
            page = self.pages.get(path) if ours else None
            content = page.body.decode("utf-8", "replace") if page else f"Text of {target}."
            title = f"Title of {target}"
            if "application/json" not in request.headers.get("accept", ""):
                text = f"Title: {title}\n\nURL Source: {target}\n\nMarkdown Content:\n{content}"
                return Response(text, 200, media_type="text/plain")
            data = {"title": title, "url": target, "content": content}
            return JSONResponse({"code": 200, "status": 20000, "data": data})

        return await self._run("jina", request, answer)

    async def _site(self, request: Request) -> Response:
        async def answer() -> Response:
            path = request.path_params["path"]
            if path == "huge":
                return StreamingResponse(self._huge(), media_type="text/plain; charset=utf-8")
            if path == "drip":
                return StreamingResponse(_drip(), media_type="text/plain")
            page = self.pages.get(path)
            if page is None:
                return Response("no such page", 404, media_type="text/plain")
            headers = {"location": page.location} if page.location else {}
            response = Response(page.body, page.status, headers)
            if page.content_type:
                response.headers["content-type"] = page.content_type
            elif "content-type" in response.headers:
                del response.headers["content-type"]
            return response

        return await self._run("site", request, answer)

    async def _huge(self):  # type: ignore[no-untyped-def]
        chunk = b"all work and no play makes a huge page\n" * 1638  # about 64 KB
        sent = 0
        while sent < self.huge_bytes:
            yield chunk
            sent += len(chunk)


async def _drip():  # type: ignore[no-untyped-def]
    for _ in range(200):
        yield b"."
        await asyncio.sleep(0.05)


def _presented_key(route: str, request: Request) -> str | None:
    if route == "serper":
        return request.headers.get("x-api-key")
    if route == "brave":
        return request.headers.get("x-subscription-token")
    auth = request.headers.get("authorization", "")
    return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None


class HitCounter:
    """A second loopback service that counts every connection it accepts and answers each with
    a page holding `SECRET`: a request the SSRF guard should have refused shows up as a hit,
    whatever became of it. Listens on 127.0.0.1 and, where the machine has IPv6, on [::1] at
    the same port. `with HitCounter() as counter:`; `counter.hits`, `counter.reset()`."""

    SECRET = "the other service's secret"

    def __init__(self) -> None:
        self.hits = 0
        self._lock = threading.Lock()
        self._servers: list[socketserver.ThreadingTCPServer] = []

    def __enter__(self) -> HitCounter:
        counter = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with counter._lock:
                    counter.hits += 1
                self.request.settimeout(2.0)
                with contextlib.suppress(OSError):
                    self.request.recv(65536)  # the request head; its content does not matter
                    body = f"<html><body><p>{counter.SECRET}</p></body></html>".encode()
                    head = (
                        f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {len(body)}"
                    )
                    self.request.sendall(head.encode() + b"\r\nConnection: close\r\n\r\n" + body)

        class V6(socketserver.ThreadingTCPServer):
            address_family = socket.AF_INET6

        v4 = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._servers.append(v4)
        self.port = v4.server_address[1]
        with contextlib.suppress(OSError):  # no IPv6 here, or the port is taken there
            self._servers.append(V6(("::1", self.port), Handler))
        for server in self._servers:
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.hits = 0


# -- the double's own checks -----------------------------------------------------------------


def test_the_fake_pdf_is_a_real_pdf():
    reader = pypdf.PdfReader(io.BytesIO(tiny_pdf("Hello there", title="Greeting")))
    assert reader.pages[0].extract_text() == "Hello there"
    assert reader.metadata is not None and reader.metadata.title == "Greeting"


def test_faults_come_in_order_then_the_api_answers():
    with FakeWeb() as web:
        web.fail_next("searxng", Fault(429, {"Retry-After": "3"}), Fault(503))
        params = {"q": "x", "format": "json"}
        answers = [httpx.get(f"{web.url}/searxng/search", params=params) for _ in range(3)]
        assert [a.status_code for a in answers] == [429, 503, 200]
        assert answers[0].headers["retry-after"] == "3"
        assert answers[2].json()["results"][0]["url"] == expected_urls("x", 1)[0]
        assert len(web.seen("searxng")) == 3


def test_the_hit_counter_counts_every_connection():
    with HitCounter() as counter:
        for _ in range(2):  # the count is taken before the answer: no waiting needed
            assert HitCounter.SECRET in httpx.get(f"http://127.0.0.1:{counter.port}/x").text
        assert counter.hits == 2
        counter.reset()
        assert counter.hits == 0
