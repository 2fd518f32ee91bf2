"""A retrieval service over HTTP (FastAPI) in front of any SearchBackend.

The wire format is the one of the Search-R1 / ASearcher / RLinf retrieval servers, so clients
written for them work against this server and `RetrievalClient` works against theirs:

- `POST /retrieve` `{"queries": [str], "topk": int | null, "return_scores": bool}` ->
  `{"result": [[{"contents", "url", "title"}, ...] per query]}`; with `return_scores` each
  entry is `{"document": {...}, "score": float}`. `topk` null means the server default.
- `POST /access` `{"urls": [str]}` -> `{"result": [{"url", "title", "contents"} | null per url]}`.

The queries of one request run concurrently. A backend failure is an HTTP 500 whose `detail`
says what broke. Binds 127.0.0.1 unless told otherwise. Knows nothing about agents or prompts.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from wideseek.serving import LOOPBACK, serve_app
from wideseek.tools.base import SearchBackend, SearchHit

DEFAULT_HOST = LOOPBACK
DEFAULT_PORT = 8001


class RetrieveRequest(BaseModel):
    queries: list[str]
    topk: int | None = Field(None, ge=1, le=100)
    return_scores: bool = False


class AccessRequest(BaseModel):
    urls: list[str]


def hit_payload(hit: SearchHit) -> dict[str, Any]:
    return {"contents": hit.snippet, "url": hit.url, "title": hit.title}


def create_app(backend: SearchBackend, default_topk: int = 3) -> FastAPI:
    app = FastAPI(title="wideseek retrieval", docs_url=None, redoc_url=None)

    @app.post("/retrieve")
    async def retrieve(request: RetrieveRequest) -> dict[str, Any]:
        k = request.topk or default_topk
        try:
            per_query = await asyncio.gather(*(backend.search(q, k) for q in request.queries))
        except Exception as e:  # report, don't crash the server
            raise HTTPException(status_code=500, detail=f"search failed: {e}") from e
        if request.return_scores:
            result = [
                [{"document": hit_payload(h), "score": h.score or 0.0} for h in hits]
                for hits in per_query
            ]
        else:
            result = [[hit_payload(h) for h in hits] for hits in per_query]
        return {"result": result}

    @app.post("/access")
    async def access(request: AccessRequest) -> dict[str, Any]:
        try:
            pages = await asyncio.gather(*(backend.access(u) for u in request.urls))
        except Exception as e:
            raise HTTPException(status_code=500, detail=f"access failed: {e}") from e
        return {
            "result": [
                None if p is None else {"url": p.url, "title": p.title, "contents": p.text}
                for p in pages
            ]
        }

    return app


def serve(
    backend: SearchBackend, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, top_k: int = 3
) -> None:
    """Run the service in the foreground until interrupted."""
    serve_app(create_app(backend, top_k), host=host, port=port)
