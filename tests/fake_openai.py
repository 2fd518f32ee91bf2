"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks.

`FakeOpenAIServer` runs a small Starlette app under uvicorn in a background thread, on a free
port, and serves `GET /v1/models`, `POST /v1/chat/completions` and `POST /v1/completions`:

    with FakeOpenAIServer(responder=my_fn, latency_s=0.05) as srv:
        engine = HttpEngine(srv.base_url, model=srv.model)
        ...
        srv.requests   # every request: path, JSON body, headers
        srv.max_in_flight

What each POST answers, first match wins:
1. `srv.inject(fault, times=n)`: the next n requests get that `Fault` (HTTP status, delay,
   malformed JSON) instead of an answer.
2. `script`: a queue of replies, consumed in order.
3. `responder(endpoint, body)`: a callable, `endpoint` is "chat" or "completions".
4. a default echo reply ("ok").
A reply is a full response dict (sent as is), a `Fault`, or a string, which becomes a chat
message or a completion whose token ids come from `encode` (UTF-8 bytes by default) with
logprob -0.5 per token, in vLLM's `return_tokens_as_token_ids` shape. For token-path agent
tests pass `encode=lambda t: renderer.tokenizer.encode(t, add_special_tokens=False) +
renderer.end_of_turn_ids` (tests/tiny_tokenizer.py builds a tokenizer), as a real server
returns the EOS id of a reply that ended its turn. `chat_reply` and
`completion_reply` build the dicts for richer cases (tool calls, reasoning, exact ids).

Weight updates, as vLLM and SGLang speak them (src/wideseek/llm/weight_push.py): vLLM's
`POST /v1/load_lora_adapter` / `/v1/unload_lora_adapter` (200, plain text) and SGLang's
`/load_lora_adapter` / `/unload_lora_adapter` / `/update_weights_from_disk` (200, `{"success"}`).
`srv.adapters` holds the loaded ones (name -> path; loading a name already loaded is refused, as
vLLM does), `srv.weights_path` the last full reload; `srv.refuse_weights = "why"` makes every
weight update fail (vLLM: HTTP 400 with that message; SGLang: `success: false`).
`FakeOpenAIServer(lora_addressing="vllm" | "sglang")` also reads which adapter a completion or
chat request samples with, as that server does: vLLM the `model` (the base's name or a loaded
adapter's, else HTTP 404), SGLang `model: "<base>:<adapter>"` first, then the body's
`lora_path` (an adapter not loaded: HTTP 400). `srv.sampled_with` lists the adapter of each
answered request in order (None: the base).

`latency_s` is added to every POST (asyncio sleep: requests overlap, as on a real server).
The server knows nothing about models or tokenizers; it only plays the wire format.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Responder = Callable[[str, dict[str, Any]], Any]


@dataclass(frozen=True)
class Fault:
    """A misbehaviour to play instead of a reply."""

    status: int = 200
    delay_s: float = 0.0  # sleep before answering (longer than the client timeout: a timeout)
    malformed: bool = False  # answer 200 with a body that is not JSON
    retry_after: float | None = None  # Retry-After header (429)
    message: str | None = None  # the error's text; None: "injected fault <status>"

    @classmethod
    def http(
        cls, status: int, retry_after: float | None = None, message: str | None = None
    ) -> Fault:
        return cls(status=status, retry_after=retry_after, message=message)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        return cls(delay_s=seconds)

    @classmethod
    def bad_json(cls) -> Fault:
        return cls(malformed=True)


@dataclass
class RecordedRequest:
    path: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def chat_reply(
    content: str | None = "",
    *,
    tool_calls: list[tuple[str, str | dict[str, Any]]] | None = None,
    reasoning: str | None = None,
    finish_reason: str | None = None,
    usage: tuple[int, int] = (0, 0),
) -> dict[str, Any]:
    """A chat-completions response. `tool_calls` are (name, arguments); a string argument is sent
    verbatim (so a test can send malformed JSON), a dict is JSON-encoded."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    if tool_calls:
        message["tool_calls"] = [
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {
                    "name": name,
                    "arguments": args if isinstance(args, str) else json.dumps(args),
                },
            }
            for i, (name, args) in enumerate(tool_calls)
        ]
    reason = finish_reason or ("tool_calls" if tool_calls else "stop")
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": reason}],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1]},
    }


def completion_reply(
    text: str,
    token_ids: list[int],
    logprobs: list[float] | None = None,
    *,
    finish_reason: str = "stop",
    prompt_tokens: int = 0,
) -> dict[str, Any]:
    """A /v1/completions response in vLLM's shape with `return_tokens_as_token_ids=true`."""
    lps = logprobs if logprobs is not None else [-0.5] * len(token_ids)
    return {
        "id": "cmpl-fake",
        "object": "text_completion",
        "choices": [
            {
                "index": 0,
                "text": text,
                "finish_reason": finish_reason,
                "logprobs": {
                    "tokens": [f"token_id:{t}" for t in token_ids],
                    "token_logprobs": lps,
                    "top_logprobs": [
                        {f"token_id:{t}": lp} for t, lp in zip(token_ids, lps, strict=True)
                    ],
                    "text_offset": list(range(len(token_ids))),
                },
            }
        ],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(token_ids)},
    }


def _utf8_ids(text: str) -> list[int]:
    return list(text.encode("utf-8"))


class FakeOpenAIServer:
    def __init__(
        self,
        *,
        script: Iterable[Any] = (),
        responder: Responder | None = None,
        latency_s: float = 0.0,
        model: str = "fake-model",
        encode: Callable[[str], list[int]] = _utf8_ids,
        lora_addressing: str | None = None,
    ) -> None:
        self.script: deque[Any] = deque(script)
        self.responder = responder
        self.latency_s = latency_s
        self.model = model
        self.encode = encode
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._faults: deque[Fault] = deque()
        self.adapters: dict[str, str] = {}
        self.weights_path: str | None = None
        self.refuse_weights: str | None = None
        self.lora_addressing = lora_addressing
        self.sampled_with: list[str | None] = []
        self._lock = threading.Lock()  # the test thread and the server thread both touch state
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- public --------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def inject(self, fault: Fault, times: int = 1) -> None:
        with self._lock:
            self._faults.extend([fault] * times)

    def bodies(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """Recorded POST bodies, optionally only those of one endpoint ("chat"/"completions")."""
        return [
            r.body
            for r in self.requests
            if r.path != "/v1/models" and (endpoint is None or _endpoint(r.path) == endpoint)
        ]

    def __enter__(self) -> FakeOpenAIServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this; without it Nagle + delayed ACK hold each response
        # body back ~40 ms on a kept-alive connection (uvicorn writes headers and body apart).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self._app(), log_level="error", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._thread.join(timeout=10)

    # -- the app -------------------------------------------------------------------------------

    def _app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1/chat/completions", self._generate, methods=["POST"]),
                Route("/v1/completions", self._generate, methods=["POST"]),
                Route("/v1/load_lora_adapter", self._vllm_weights, methods=["POST"]),
                Route("/v1/unload_lora_adapter", self._vllm_weights, methods=["POST"]),
                Route("/load_lora_adapter", self._sglang_weights, methods=["POST"]),
                Route("/unload_lora_adapter", self._sglang_weights, methods=["POST"]),
                Route("/update_weights_from_disk", self._sglang_weights, methods=["POST"]),
            ]
        )

    async def _models(self, request: Request) -> Response:
        self._record(request, {})
        return JSONResponse({"object": "list", "data": [{"id": self.model, "object": "model"}]})

    async def _generate(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            return JSONResponse({"error": {"message": "request body is not JSON"}}, 400)
        self._record(request, body)
        if self.lora_addressing is not None:
            with self._lock:
                adapter, refusal = self._adapter_of(body)
                if refusal is None:
                    self.sampled_with.append(adapter)
            if refusal is not None:
                return refusal
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            return await self._answer(_endpoint(request.url.path), body)
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _answer(self, endpoint: str, body: dict[str, Any]) -> Response:
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        if fault is not None and (played := await self._play(fault)) is not None:
            return played
        with self._lock:
            reply: Any = self.script.popleft() if self.script else None
        if reply is None:
            reply = self.responder(endpoint, body) if self.responder else "ok"
        if isinstance(reply, Fault):
            return await self._play(reply) or JSONResponse(self._from_text(endpoint, "ok"))
        if isinstance(reply, str):
            reply = self._from_text(endpoint, reply)
        return JSONResponse(reply)

    async def _play(self, fault: Fault) -> Response | None:
        """The fault's response, or None when it only delays (the normal reply follows)."""
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if fault.malformed:
            return Response('{"choices": [', media_type="application/json")
        if fault.status != 200:
            headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
            error = {"error": {"message": fault.message or f"injected fault {fault.status}"}}
            return JSONResponse(error, fault.status, headers=headers)
        return None

    def _adapter_of(self, body: dict[str, Any]) -> tuple[str | None, Response | None]:
        """The adapter a generation request samples with, or the refusal of a request naming
        one that is not loaded (`lora_addressing`, module docstring)."""
        model = str(body.get("model") or "")
        if self.lora_addressing == "vllm":
            if model == self.model:
                return None, None
            if model in self.adapters:
                return model, None
            error = {"message": f"The model `{model}` does not exist.", "type": "NotFoundError"}
            return None, JSONResponse({"error": {**error, "code": 404}}, 404)
        _, _, named = model.partition(":")  # SGLang: the model's adapter wins over lora_path
        adapter = named.strip() or body.get("lora_path")
        if adapter is None or adapter in self.adapters:
            return adapter, None
        why = f"The following requested LoRA adapters are not loaded: {adapter}"
        return None, JSONResponse({"object": "error", "message": why, "code": 400}, 400)

    def _update_weights(self, path: str, body: dict[str, Any]) -> str | None:
        """Apply one weight update; why it is refused, or None."""
        if self.refuse_weights is not None:
            return self.refuse_weights
        name = body.get("lora_name")
        if path.endswith("/update_weights_from_disk"):
            self.weights_path = body["model_path"]
        elif path.endswith("/load_lora_adapter"):
            if name in self.adapters:
                return f"The lora adapter '{name}' has already been loaded."
            self.adapters[name] = body["lora_path"]
        elif self.adapters.pop(name, None) is None:
            return f"The lora adapter '{name}' cannot be found."
        return None

    async def _vllm_weights(self, request: Request) -> Response:
        body = json.loads(await request.body())
        self._record(request, body)
        with self._lock:
            why = self._update_weights(request.url.path, body)
        if why is not None:
            error = {"error": {"message": why, "type": "BadRequestError", "code": 400}}
            return JSONResponse(error, 400)
        return Response(f"Success: LoRA adapter '{body['lora_name']}' updated.", 200)

    async def _sglang_weights(self, request: Request) -> Response:
        body = json.loads(await request.body())
        self._record(request, body)
        with self._lock:
            why = self._update_weights(request.url.path, body)
            loaded = dict(self.adapters)
        answer = {"success": why is None, "error_message": why or "", "message": why or ""}
        return JSONResponse({**answer, "loaded_adapters": loaded})

    def _from_text(self, endpoint: str, text: str) -> dict[str, Any]:
        if endpoint == "chat":
            return chat_reply(text)
        return completion_reply(text, self.encode(text))

    def _record(self, request: Request, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(
                RecordedRequest(request.url.path, body, dict(request.headers.items()))
            )


def _endpoint(path: str) -> str:
    return "chat" if path.endswith("/chat/completions") else "completions"
