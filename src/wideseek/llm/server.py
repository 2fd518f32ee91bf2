"""Serve any Engine as an OpenAI-compatible HTTP API (FastAPI): `create_app(engine)`.

Routes: `GET /v1/models`, `POST /v1/chat/completions` (messages + `tools` -> an assistant
message whose `<tool_call>` blocks come back parsed as `tool_calls`; `stream: true` answers in
OpenAI's server-sent-event chunks), `POST /v1/completions` (prompt as text, token ids, or a list
of either; `logprobs`; vLLM's `return_tokens_as_token_ids` spelling "token_id:N", which is what
wideseek's own HTTP engine reads on its token path). Errors are OpenAI-shaped JSON
(`{"error": {"message", "type", "param", "code"}}`) with 400 / 404 / 500 status codes.

Limits, by design: `n` must be 1 (agents sample groups by sending several requests, which the
engine batches); streaming sends the finished completion as chunks, since the Engine protocol
returns whole completions; text prompts need a tokenizer (`LocalEngine.tokenizer` is used when
present). A matched stop string is removed from returned text, as OpenAI does.

Running the app (foreground, or a thread for tests and notebooks) is `wideseek.serving`'s job.
This module knows HTTP and the OpenAI wire format; it does not know models or agents.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from wideseek.llm.engine import Completion, Engine, EngineError, GenerateRequest, SamplingParams
from wideseek.llm.toolcall import parse_tool_calls, split_thinking
from wideseek.types import Message, ToolCall


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", param=None):
        super().__init__(message)
        self.status, self.message, self.kind, self.param = status, message, kind, param


# --- wire models (only the fields we use; unknown fields are ignored, as vLLM does) ----------
class _Sampling(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    temperature: float = Field(1.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = 1
    stream: bool = False

    def sampling(self, max_tokens: int | None) -> SamplingParams:
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return SamplingParams(
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=max_tokens,
            stop=stop,
            seed=self.seed,
        )


class ChatBody(_Sampling):
    messages: list[dict[str, Any]] = Field(min_length=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False
    stream_options: dict[str, Any] | None = None


class CompletionBody(_Sampling):
    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: int | None = Field(16, ge=1)  # OpenAI's and vLLM's default
    logprobs: int | None = Field(None, ge=0)
    echo: bool = False
    return_tokens_as_token_ids: bool = False


# --- request -> engine -----------------------------------------------------------------------
def _text(content: Any) -> str:
    """OpenAI content: a string, None, or a list of parts of which we read the text ones."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    raise ApiError(400, "message content must be a string or a list of parts", param="messages")


def to_message(raw: dict[str, Any], index: int) -> Message:
    role = {"developer": "system"}.get(raw.get("role", ""), raw.get("role"))
    if role not in ("system", "user", "assistant", "tool"):
        raise ApiError(
            400, f"messages[{index}]: unknown role {raw.get('role')!r}", param="messages"
        )
    calls = []
    for n, call in enumerate(raw.get("tool_calls") or []):
        fn = call.get("function") or {}
        args = fn.get("arguments") or "{}"
        try:
            args = json.loads(args) if isinstance(args, str) else args
        except json.JSONDecodeError as e:
            raise ApiError(
                400, f"messages[{index}].tool_calls[{n}]: arguments are not JSON ({e.msg})"
            ) from e
        calls.append(
            ToolCall(id=call.get("id") or f"call_{n}", name=fn.get("name", ""), arguments=args)
        )
    return Message(
        role=role,
        content=_text(raw.get("content")),
        tool_calls=calls or None,
        tool_call_id=raw.get("tool_call_id"),
        name=raw.get("name"),
    )


def _strip_stop(text: str, completion: Completion, stops: list[str]) -> str:
    if completion.finish_reason != "stop":
        return text
    for stop in stops:
        if stop and text.endswith(stop):
            return text[: -len(stop)]
    return text


class _Chat(BaseModel):
    """The assistant message of a chat completion, before it is put on the wire."""

    content: str | None
    reasoning: str | None
    tool_calls: list[ToolCall]
    finish_reason: Literal["stop", "length", "tool_calls", "error"]


def parse_assistant(text: str, completion: Completion, with_tools: bool) -> _Chat:
    calls = list(completion.tool_calls or [])
    if with_tools and not calls:
        parsed = parse_tool_calls(text, id_prefix=f"call_{uuid.uuid4().hex[:12]}")
        thinking, calls = parsed.thinking, parsed.calls
        # Unreadable calls stay visible as text rather than vanishing.
        content = split_thinking(text)[1].strip() if parsed.errors else parsed.content
    else:
        thinking, content = split_thinking(text)
        content = content.strip()
    finish = (
        "tool_calls" if calls and completion.finish_reason == "stop" else completion.finish_reason
    )
    return _Chat(
        content=content or (None if calls else ""),
        reasoning=thinking or None,
        tool_calls=calls,
        finish_reason=finish,
    )


def _wire_calls(calls: list[ToolCall], with_index: bool = False) -> list[dict[str, Any]]:
    return [
        {
            **({"index": i} if with_index else {}),
            "id": c.id,
            "type": "function",
            "function": {"name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)},
        }
        for i, c in enumerate(calls)
    ]


def _usage(completion: Completion) -> dict[str, int]:
    u = completion.usage
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens + u.completion_tokens,
    }


def _error(status: int, message: str, kind: str, param: Any = None) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": param, "code": status}}
    return JSONResponse(body, status_code=status)


# --- the app ---------------------------------------------------------------------------------
def create_app(engine: Engine, tokenizer: Any | None = None) -> FastAPI:
    """An OpenAI-compatible app over `engine`. `tokenizer` (encode/decode) enables text prompts
    on /v1/completions and token strings in logprobs; defaults to `engine.tokenizer`."""
    tokenizer = tokenizer if tokenizer is not None else getattr(engine, "tokenizer", None)
    app = FastAPI(title="wideseek", docs_url=None, redoc_url=None)
    created = int(time.time())

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, e: ApiError) -> JSONResponse:
        return _error(e.status, e.message, e.kind, e.param)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"] if p != "body")
        return _error(400, f"{where}: {err['msg']}", "invalid_request_error", where)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, e: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if e.status_code == 404 else "invalid_request_error"
        return _error(e.status_code, str(e.detail), kind)

    def check(body: _Sampling) -> None:
        if body.model != engine.model_name:
            raise ApiError(404, f"model {body.model!r} does not exist", "not_found_error", "model")
        if body.n != 1:
            raise ApiError(400, "only n=1 is supported; send several requests", param="n")

    async def run(request: GenerateRequest) -> Completion:
        try:
            return await engine.generate(request)
        except EngineError as e:
            # An EngineError that is also a ValueError blames the request, not the engine.
            if isinstance(e, ValueError):
                raise ApiError(400, str(e), param="prompt") from e
            raise ApiError(500, str(e), "server_error") from e

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        card = {
            "id": engine.model_name,
            "object": "model",
            "created": created,
            "owned_by": "wideseek",
        }
        return {"object": "list", "data": [card]}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(body: ChatBody) -> JSONResponse | StreamingResponse:
        check(body)
        messages = [to_message(m, i) for i, m in enumerate(body.messages)]
        tools = None if body.tool_choice == "none" else body.tools
        sampling = body.sampling(body.max_completion_tokens or body.max_tokens)
        completion = await run(GenerateRequest(messages=messages, tools=tools, sampling=sampling))
        text = _strip_stop(completion.text, completion, sampling.stop)
        reply = parse_assistant(text, completion, with_tools=bool(tools))
        head = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "created": int(time.time()),
            "model": engine.model_name,
        }
        if body.stream:
            include_usage = bool((body.stream_options or {}).get("include_usage"))
            return StreamingResponse(
                _chat_chunks(head, reply, completion, include_usage), media_type="text/event-stream"
            )
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.tool_calls:
            message["tool_calls"] = _wire_calls(reply.tool_calls)
        if reply.reasoning:
            message["reasoning_content"] = reply.reasoning
        choice = {
            "index": 0,
            "message": message,
            "logprobs": _chat_logprobs(completion, tokenizer) if body.logprobs else None,
            "finish_reason": reply.finish_reason,
        }
        return JSONResponse(
            {**head, "object": "chat.completion", "choices": [choice], "usage": _usage(completion)}
        )

    @app.post("/v1/completions")
    async def completions(body: CompletionBody) -> dict[str, Any]:
        check(body)
        if body.stream or body.echo:
            raise ApiError(400, "stream and echo are not supported on /v1/completions")
        prompts = _prompt_list(body.prompt, tokenizer)
        sampling = body.sampling(body.max_tokens)
        done = await asyncio.gather(
            *(run(GenerateRequest(prompt_token_ids=p, sampling=sampling)) for p in prompts)
        )
        choices = []
        for i, c in enumerate(done):
            logprobs = None
            if body.logprobs is not None:
                logprobs = _legacy_logprobs(c, tokenizer, body.return_tokens_as_token_ids)
            text = _strip_stop(c.text, c, sampling.stop)
            choices.append(
                {"index": i, "text": text, "logprobs": logprobs, "finish_reason": c.finish_reason}
            )
        usage = {k: sum(_usage(c)[k] for c in done) for k in _usage(done[0])}
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": engine.model_name,
            "choices": choices,
            "usage": usage,
        }

    return app


def _prompt_list(prompt: Any, tokenizer: Any | None) -> list[list[int]]:
    if isinstance(prompt, str) or (prompt and isinstance(prompt[0], str)):
        if tokenizer is None:
            raise ApiError(400, "this server takes token-id prompts only", param="prompt")
        texts = [prompt] if isinstance(prompt, str) else prompt
        return [tokenizer.encode(t) for t in texts]
    if not prompt:
        raise ApiError(400, "prompt is empty", param="prompt")
    return [prompt] if isinstance(prompt[0], int) else prompt


def _token_strings(ids: list[int], tokenizer: Any | None, as_ids: bool) -> list[str]:
    if as_ids or tokenizer is None:
        return [f"token_id:{i}" for i in ids]
    return [tokenizer.decode([i]) for i in ids]


def _legacy_logprobs(c: Completion, tokenizer: Any | None, as_ids: bool) -> dict[str, Any]:
    """The /v1/completions logprobs object; top_logprobs hold the sampled token only."""
    ids, lps = c.token_ids or [], c.logprobs or []
    tokens = _token_strings(ids, tokenizer, as_ids)
    offsets, pos = [], 0
    for t in tokens:
        offsets.append(pos)
        pos += len(t)
    return {
        "tokens": tokens,
        "token_logprobs": lps,
        "top_logprobs": [{t: lp} for t, lp in zip(tokens, lps, strict=False)],
        "text_offset": offsets,
    }


def _chat_logprobs(c: Completion, tokenizer: Any | None) -> dict[str, Any]:
    tokens = _token_strings(c.token_ids or [], tokenizer, as_ids=False)
    content = [
        {"token": t, "logprob": lp, "bytes": list(t.encode()), "top_logprobs": []}
        for t, lp in zip(tokens, c.logprobs or [], strict=False)
    ]
    return {"content": content}


async def _chat_chunks(
    head: dict[str, Any], reply: _Chat, completion: Completion, include_usage: bool
) -> AsyncIterator[str]:
    """OpenAI chat.completion.chunk events: role, content, tool calls, finish, [usage], DONE."""

    def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        chunk = {**head, "object": "chat.completion.chunk", "choices": [choice], **extra}
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    yield event({"role": "assistant", "content": ""})
    if reply.reasoning:
        yield event({"reasoning_content": reply.reasoning})
    if reply.content:
        yield event({"content": reply.content})
    if reply.tool_calls:
        yield event({"tool_calls": _wire_calls(reply.tool_calls, with_index=True)})
    yield event({}, reply.finish_reason)
    if include_usage:
        chunk = {
            **head,
            "object": "chat.completion.chunk",
            "choices": [],
            "usage": _usage(completion),
        }
        yield f"data: {json.dumps(chunk)}\n\n"
    yield "data: [DONE]\n\n"
