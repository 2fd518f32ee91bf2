"""Retrieval service and client: a real uvicorn on 127.0.0.1, a dead port, foreign payloads."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from wideseek.cli import main
from wideseek.config import ToolsConfig
from wideseek.tools.local_corpus import LocalCorpus
from wideseek.tools.retrieval_client import RetrievalClient, RetrievalError
from wideseek.tools.retrieval_server import create_app
from wideseek.tools.search_tools import make_tools

PAGES = [
    {
        "id": "1",
        "url": "https://e.org/oslo",
        "title": "Oslo",
        "text": "Oslo is the capital of Norway. It lies at the head of the Oslofjord.",
    },
    {
        "id": "2",
        "url": "https://e.org/bern",
        "title": "Bern",
        "text": "Bern is the federal city of Switzerland. The Aare river loops around it.",
    },
    {"id": "3", "url": "https://e.org/首尔", "title": "首尔", "text": "首尔是韩国的首都。"},
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> LocalCorpus:
    path = tmp_path_factory.mktemp("corpus") / "pages.jsonl"
    path.write_text("\n".join(json.dumps(p, ensure_ascii=False) for p in PAGES), "utf-8")
    return LocalCorpus(path)


@pytest.fixture(scope="module")
def server_url(corpus: LocalCorpus) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(create_app(corpus), host="127.0.0.1", port=port, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):  # wait for the socket, not a fixed sleep
        if server.started:
            break
        thread.join(0.01)
    assert server.started, "retrieval server did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)


def test_wire_format_matches_the_search_r1_servers(server_url: str) -> None:
    body = {"queries": ["capital of Norway", "韩国首都", "nothing"], "topk": 2}
    result = httpx.post(f"{server_url}/retrieve", json=body).json()["result"]
    assert result[2] == []
    assert result[0][0] == {
        "contents": PAGES[0]["text"],
        "url": "https://e.org/oslo",
        "title": "Oslo",
    }
    assert result[1][0]["url"] == "https://e.org/首尔"
    scored = httpx.post(
        f"{server_url}/retrieve", json={"queries": ["Aare"], "topk": None, "return_scores": True}
    ).json()["result"]
    assert scored[0][0]["document"]["title"] == "Bern" and scored[0][0]["score"] > 0
    pages = httpx.post(f"{server_url}/access", json={"urls": ["https://e.org/bern", "x"]}).json()
    assert pages["result"][0]["contents"].startswith("Bern is") and pages["result"][1] is None
    assert httpx.post(f"{server_url}/retrieve", json={"queries": "x"}).status_code == 422


async def test_client_round_trip_through_the_tools(server_url: str) -> None:
    client = RetrievalClient(server_url.removeprefix("http://"))  # RLinf-style "host:port"
    hits = await client.search("capital of Norway", 3)
    assert hits[0].title == "Oslo" and hits[0].score and hits[0].score > 0
    page = await client.access("https://e.org/oslo")
    assert page is not None and page.text == PAGES[0]["text"]
    assert await client.access("https://e.org/nowhere") is None
    search, access = make_tools("wideseek-r1", "subagent", client, ToolsConfig())
    result = await search.call({"queries": [{"query": "Oslofjord"}, {"query": "Aare river"}]})
    assert not result.error and "[1] Oslo" in result.text and "[1] Bern" in result.text
    result = await access.call({"urls": [{"url": "https://e.org/bern", "info_to_extract": "x"}]})
    assert "Aare river" in result.text
    await client.aclose()


async def test_dead_server_becomes_an_error_result() -> None:
    client = RetrievalClient(f"http://127.0.0.1:{free_port()}", retries=1, backoff_s=0.01)
    with pytest.raises(RetrievalError, match=r"unreachable .* after 2 attempts"):
        await client.search("x", 3)
    search, access = make_tools("wideseek", "single", client, ToolsConfig())
    result = await search.call({"query": "capital of Norway"})
    assert result.error and "retrieval server http://127.0.0.1:" in result.text
    result = await access.call({"url": "https://e.org/oslo"})
    assert result.error and "Access failed" in result.text


def transport_client(handler) -> RetrievalClient:
    client = RetrievalClient("http://retrieval.test", retries=2, backoff_s=0.0)
    client._http = lambda: httpx.AsyncClient(  # type: ignore[method-assign]
        base_url=client.base_url, transport=httpx.MockTransport(handler)
    )
    return client


async def test_client_reads_search_r1_payloads_without_title() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        doc = {"contents": '"Lima"\nLima is the capital of Peru.', "id": "7"}
        return httpx.Response(200, json={"result": [[{"document": doc, "score": 3.5}]]})

    hit = (await transport_client(handler).search("peru", 3))[0]
    assert (hit.title, hit.snippet, hit.url, hit.score) == (
        "Lima",
        "Lima is the capital of Peru.",
        "",
        3.5,
    )


async def test_client_retries_5xx_then_reports_and_fails_fast_on_4xx() -> None:
    answers = [httpx.Response(503, text="busy"), httpx.Response(200, json={"result": [[]]})]
    assert await transport_client(lambda r: answers.pop(0)).search("x", 1) == []
    with pytest.raises(RetrievalError, match="HTTP 500: broken after 3 attempts"):
        await transport_client(lambda r: httpx.Response(500, text="broken")).search("x", 1)
    calls = []

    def not_found(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(404, text="no such route")

    with pytest.raises(RetrievalError, match="HTTP 404"):
        await transport_client(not_found).access("u")
    assert len(calls) == 1
    with pytest.raises(RetrievalError, match="no 'result'"):
        await transport_client(lambda r: httpx.Response(200, json={"x": 1})).search("x", 1)


def test_cli_serve_reports_a_bad_corpus_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "url": "u", "title": "t"}\n', "utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["retrieval", "serve", "--corpus", str(bad)])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.strip() == f"error: {bad}:1: missing field 'text'"


async def test_client_retries_busy_answers_but_not_refusals() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/access":
            return httpx.Response(404, text="no such route")
        if len(seen) < 3:
            return httpx.Response(503, headers={"Retry-After": "0"}, text="busy")
        doc = {"title": "Lima", "contents": "Lima is the capital of Peru.", "url": "u"}
        return httpx.Response(200, json={"result": [[{"document": doc}]]})

    client = transport_client(handler)
    assert [h.title for h in await client.search("peru", 3)] == ["Lima"]
    assert seen == ["/retrieve"] * 3
    with pytest.raises(RetrievalError, match=r"/access: HTTP 404: no such route$"):
        await client.access("u")
    assert seen.count("/access") == 1
