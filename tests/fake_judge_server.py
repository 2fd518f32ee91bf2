"""A loopback OpenAI-compatible judge server for tests and benchmarks (a test double).

Contract: `with FakeJudgeServer() as server:` serves `POST {server.base_url}/chat/completions`
on 127.0.0.1 (free port, `wideseek.serving.BackgroundServer`) until the block ends. It reads the
prompts that `judges.LLMJudge` writes and answers them as `OfflineJudge` would, in a fenced
JSON block, so LLM-judge scores over real HTTP equal offline scores. Fault injection for
retry tests: the first `fail_first` requests get HTTP 500; every reply waits `delay_s`.
`requests` counts what arrived, `max_in_flight` the most requests served at once, and
`last_authorization` keeps the last Authorization header.

Knows only our own prompt layout; it is not a model and grades nothing else.
"""

from __future__ import annotations

import ast
import asyncio
import json
import re
import threading

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from wideseek.eval.judges import OfflineJudge
from wideseek.serving import BackgroundServer

_CANDIDATES = re.compile(r"^CANDIDATES = (.*)$", re.MULTILINE)
_REFERENCE = re.compile(r"^REFERENCE = (.*)$", re.MULTILINE)
_CELLS = re.compile(r"<<<cells\n(.*)\ncells>>>", re.DOTALL)


async def offline_reply(prompt: str) -> str:
    """What the offline judge answers to one of `LLMJudge`'s prompts."""
    judge = OfflineJudge()
    cells = _CELLS.search(prompt)
    if cells:
        entries: dict[str, dict[str, str]] = ast.literal_eval(cells.group(1))
        scores = await judge.grade(
            "", [e["response"] for e in entries.values()], [e["target"] for e in entries.values()]
        )
        answer: dict[str, object] = {k: int(s) for k, s in zip(entries, scores, strict=True)}
    else:
        candidates, reference = _CANDIDATES.search(prompt), _REFERENCE.search(prompt)
        if not candidates or not reference:
            return "I cannot tell what is asked."
        answer = dict(
            await judge.align(
                ast.literal_eval(candidates.group(1)), ast.literal_eval(reference.group(1))
            )
        )
    return "Verdict:\n```json\n" + json.dumps(answer, ensure_ascii=False) + "\n```"


class FakeJudgeServer(BackgroundServer):
    def __init__(self, fail_first: int = 0, delay_s: float = 0.0) -> None:
        self.fail_first = fail_first
        self.delay_s = delay_s
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.last_authorization: str | None = None  # to check that the API key is sent
        self._lock = threading.Lock()
        app = Starlette(routes=[Route("/v1/chat/completions", self._complete, methods=["POST"])])
        super().__init__(app)
        self.base_url = self.url + "/v1"

    async def _complete(self, request: Request) -> JSONResponse:
        with self._lock:
            self.requests += 1
            failing = self.requests <= self.fail_first
            self.last_authorization = request.headers.get("authorization")
        if failing:
            return JSONResponse({"error": "injected failure"}, status_code=500)
        body = await request.json()
        self.in_flight += 1  # handlers share one event loop: no lock needed here
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        await asyncio.sleep(self.delay_s)
        self.in_flight -= 1
        content = await offline_reply(body["messages"][-1]["content"])
        return JSONResponse(
            {
                "id": f"fake-{self.requests}",
                "object": "chat.completion",
                "model": body.get("model", "fake"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
            }
        )
