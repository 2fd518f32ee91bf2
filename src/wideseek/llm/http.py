"""`HttpEngine`: the Engine protocol over OpenAI-compatible servers (vLLM, SGLang, OpenAI,
llama.cpp server, Ollama), on one shared `httpx.AsyncClient`.

Two paths, chosen by the request:
- **token path** (`request.prompt_token_ids` set; the agent rendered it with `engine.renderer`):
  POST /v1/completions with `prompt: [ids]` and `logprobs: 1`, asking for the sampled ids in
  both known ways: `return_token_ids: true` (recent vLLM and SGLang put the ids in
  `choices[0].token_ids`) and `return_tokens_as_token_ids: true` (any vLLM since 0.5:
  `choices[0].logprobs.tokens` become `"token_id:123"`); vLLM and SGLang ignore the one they
  do not know. Logprobs come from `choices[0].logprobs.token_logprobs`. Servers that answer
  only token *strings* (older SGLang, llama.cpp, Ollama) or refuse the fields (OpenAI: HTTP 400)
  cannot give exact ids: that is an `EngineError` saying so, never a silent re-tokenization.
  `stop` and `stop_token_ids` (a vLLM / SGLang extension) are passed through; `max_tokens`
  defaults to what is left of the renderer's context length. SGLang's native `/generate`
  (`input_ids`, `return_logprob`, `meta_info.output_token_logprobs`) is not spoken here.
- **chat path** (`request.messages` set): POST /v1/chat/completions with `tools`; native
  `tool_calls` become `Completion.tool_calls`. A call whose arguments are not a JSON object is
  not dropped and does not raise: it is appended to `Completion.text` as a `<tool_call>` block
  holding the raw arguments, so `parse_tool_calls(text)` reports it as malformed. Reasoning that
  the server split out (`reasoning_content` / `reasoning`) is put back in front of the text as
  `<think>...</think>`.

Extra body keys (`extra_body`, as the OpenAI client's): merged into every completion and chat
body, for server extensions this module does not model, e.g. SGLang's `lora_path` naming the
LoRA adapter a request samples with (`weight_push.adapter_request`). A key this engine sets
itself (model, prompt, sampling, logprobs) is refused when the engine is made: it would be
overwritten, or overwrite, silently.

Sampling: `temperature` and `top_p` always; `seed`, `stop` and `top_k` only when the request
sets them. `top_k` is not OpenAI's (api.openai.com answers an unknown key with HTTP 400), but
vLLM and SGLang take it in the body and otherwise apply the model's generation_config.json
top_k: a request that must sample untruncated (RL rollouts) sets `top_k=0`, sent as -1, which
both servers read as "no cut" (SGLang refuses 0).

Every POST is capped by one `asyncio.Semaphore` per engine (`max_concurrency` in flight) and
retried by `wideseek.http_retry` (exponential backoff with jitter, `Retry-After` honoured) on
429/5xx, timeouts, connection errors and unreadable JSON; after `max_retries` retries, or at
once on another 4xx, it raises `EngineError` with one line: the URL and what failed. The API
key is read from an environment variable by `from_config`, sent as a Bearer header, and never
logged or shown in `repr`.

This module knows the wire format, not agents, prompts or chat templates (the renderer does).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import re
from collections.abc import Mapping
from typing import Any

import httpx

from wideseek import http_retry
from wideseek.config import EngineConfig
from wideseek.http_client import OwnsHttpClient
from wideseek.llm.engine import (
    ChatRenderer,
    Completion,
    ContextLengthError,
    EngineError,
    FinishReason,
    GenerateRequest,
    SamplingParams,
)
from wideseek.llm.toolcall import CLOSE, OPEN
from wideseek.types import Message, ToolCall, Usage

log = logging.getLogger(__name__)

TOKEN_ID_PREFIX = "token_id:"  # vLLM's spelling of a token with return_tokens_as_token_ids
# the body keys this engine writes itself: never taken from extra_body
_OWN_KEYS = frozenset({
    "model", "prompt", "messages", "tools", "temperature", "top_p", "top_k", "max_tokens",
    "stop", "seed", "logprobs", "stop_token_ids", "return_token_ids",
    "return_tokens_as_token_ids",
})  # fmt: skip
_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "eos": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "abort": "error",
    "content_filter": "error",
}


class HttpEngine(OwnsHttpClient):
    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        renderer: ChatRenderer | None = None,
        api_key: str | None = None,
        timeout_s: float = 600.0,
        max_retries: int = 5,
        max_concurrency: int = 64,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        seed: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        clash = sorted(set(extra_body or ()) & _OWN_KEYS)
        if clash:
            raise EngineError(
                f"extra_body: {', '.join(clash)} set by the engine itself; extra_body is for "
                "server extensions only (e.g. lora_path)"
            )
        self.extra_body = dict(extra_body or {})
        # Accept both "http://host:8000" and "http://host:8000/v1".
        root = base_url.rstrip("/")
        self.base_url = root.removesuffix("/v1")
        self.model_name = model or ""  # "" until check() picks the server's first model
        self.renderer = renderer
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._model_lock = asyncio.Lock()
        self._rng = random.Random(seed)  # jitter only; keeps runs reproducible given a seed
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(
                max_connections=max_concurrency, max_keepalive_connections=max_concurrency
            ),
        )

    @classmethod
    def from_config(
        cls,
        config: EngineConfig,
        *,
        context_length: int | None = None,
        enable_thinking: bool = True,
    ) -> HttpEngine:
        """An engine for `config`; `path: auto` means tokens when a tokenizer dir is given."""
        if not config.base_url:
            raise EngineError("engine.base_url is not set: give the OpenAI-compatible server URL")
        path = config.path
        if path == "auto":
            path = "tokens" if config.tokenizer else "chat"
        renderer = None
        if path == "tokens":
            if not config.tokenizer:
                raise EngineError("engine.path=tokens needs engine.tokenizer (a tokenizer dir)")
            from wideseek.llm.renderer import HFChatRenderer  # transformers: optional extra

            try:
                renderer = HFChatRenderer.from_pretrained(
                    config.tokenizer, context_length=context_length, enable_thinking=enable_thinking
                )
            except ValueError as e:
                raise EngineError(f"engine.tokenizer: {e}") from None
        return cls(
            config.base_url,
            config.model,
            renderer=renderer,
            api_key=os.environ.get(config.api_key_env) or None,
            timeout_s=config.timeout_s,
            max_retries=config.max_retries,
            max_concurrency=config.max_concurrency,
        )

    def __repr__(self) -> str:  # never the API key
        path = "tokens" if self.renderer is not None else "chat"
        return f"HttpEngine({self.base_url!r}, model={self.model_name!r}, path={path!r})"

    # -- lifecycle (close / async with: OwnsHttpClient) -----------------------------------------

    async def check(self) -> list[str]:
        """GET /v1/models once: the served model ids. Picks the first when no model was named;
        raises `EngineError` when the server is unreachable or does not serve our model."""
        url = f"{self.base_url}/v1/models"
        once = http_retry.RetryPolicy(attempts=1)
        try:
            data = await http_retry.call_with_retries(lambda: self._attempt("GET", url, None), once)
        except http_retry.GaveUp as e:
            raise EngineError(f"{url}: server not reachable ({self._problem(e.last)})") from None
        try:
            served = [str(m["id"]) for m in data["data"]]
        except (KeyError, TypeError) as e:
            raise EngineError(f"{url}: unexpected /v1/models response ({e!r})") from None
        if not self.model_name:
            if not served:
                raise EngineError(f"{url}: the server lists no models")
            self.model_name = served[0]
        elif served and self.model_name not in served:
            raise EngineError(
                f"{url}: model {self.model_name!r} is not served (served: {', '.join(served)})"
            )
        return served

    # -- Engine protocol -----------------------------------------------------------------------

    async def generate(self, request: GenerateRequest) -> Completion:
        await self._ensure_model()
        if request.prompt_token_ids is not None:
            return await self._generate_tokens(request.prompt_token_ids, request.sampling)
        if request.messages is not None:
            return await self._generate_chat(request.messages, request.tools, request.sampling)
        raise EngineError("GenerateRequest has neither prompt_token_ids nor messages")

    async def _ensure_model(self) -> None:
        if self.model_name:
            return
        async with self._model_lock:
            if not self.model_name:
                await self.check()

    # -- token path ----------------------------------------------------------------------------

    async def _generate_tokens(self, prompt: list[int], sampling: SamplingParams) -> Completion:
        max_tokens = sampling.max_tokens
        if self.renderer is not None:
            # Never ask for more than the context holds: servers answer that with HTTP 400.
            left = self.renderer.context_length - len(prompt)
            if left <= 0:  # nothing fits: the agent records a context overflow
                return Completion(text="", token_ids=[], logprobs=[], finish_reason="length")
            max_tokens = left if max_tokens is None else min(max_tokens, left)
        body = self._sampling_body(sampling, max_tokens)
        # Both spellings of "give me the sampled ids" (see the module docstring).
        body.update(prompt=prompt, logprobs=1, return_token_ids=True)
        body["return_tokens_as_token_ids"] = True
        if sampling.stop_token_ids:
            body["stop_token_ids"] = sampling.stop_token_ids
        url = f"{self.base_url}/v1/completions"
        data = await self._post(url, body)
        try:
            choice = data["choices"][0]
            ids, logprobs = _token_ids_and_logprobs(choice)
            text = choice.get("text")
            if text is None:
                text = self.renderer.decode(ids) if self.renderer else ""
            return Completion(
                text=text,
                token_ids=ids,
                logprobs=logprobs,
                finish_reason=_finish(choice.get("finish_reason")),
                usage=_usage(data, len(prompt), len(ids)),
            )
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise EngineError(f"{url}: unexpected completion response ({_why(e)})") from None

    # -- chat path -----------------------------------------------------------------------------

    async def _generate_chat(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]] | None,
        sampling: SamplingParams,
    ) -> Completion:
        body = self._sampling_body(sampling, sampling.max_tokens)
        body["messages"] = [m.to_openai() for m in messages]
        if tools:
            body["tools"] = tools
        url = f"{self.base_url}/v1/chat/completions"
        data = await self._post(url, body)
        try:
            choice = data["choices"][0]
            message = choice["message"]
            calls, malformed = _native_tool_calls(message.get("tool_calls") or [])
            text = _join_reasoning(
                message.get("reasoning_content") or message.get("reasoning"),
                message.get("content") or "",
            )
            text = "\n".join([text, *malformed]) if malformed else text
            return Completion(
                text=text,
                finish_reason=_finish(choice.get("finish_reason")),
                usage=_usage(data, 0, 0),
                tool_calls=calls if message.get("tool_calls") else None,
            )
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise EngineError(f"{url}: unexpected chat response ({_why(e)})") from None

    # -- HTTP ----------------------------------------------------------------------------------

    def _sampling_body(self, sampling: SamplingParams, max_tokens: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            **self.extra_body,
            "model": self.model_name,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
        }
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if sampling.stop:
            body["stop"] = sampling.stop
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if sampling.top_k is not None:
            # Only when set: OpenAI refuses keys it does not know. vLLM and SGLang read it
            # from the body, and both spell "no cut" -1 (SGLang refuses 0).
            body["top_k"] = sampling.top_k or -1
        return body

    async def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST with retries; the semaphore is held per attempt, not while backing off."""

        async def attempt() -> dict[str, Any]:
            async with self._semaphore:
                return await self._attempt("POST", url, body)

        def note(failure: BaseException, retry: int, pause: float) -> None:
            problem = self._problem(failure)
            log.warning(
                "%s: %s; retry %d/%d in %.2fs", url, problem, retry, self.max_retries, pause
            )

        policy = http_retry.RetryPolicy(
            attempts=self.max_retries + 1,
            backoff_s=self.backoff_s,
            max_backoff_s=self.max_backoff_s,
            jitter_s=self.backoff_s,
            max_retry_after_s=self.max_backoff_s,
        )
        try:
            return await http_retry.call_with_retries(attempt, policy, rng=self._rng, on_retry=note)
        except http_retry.GaveUp as e:
            problem = self._problem(e.last)
            raise EngineError(f"{url}: {problem} (gave up after {e.attempts} attempts)") from None

    async def _attempt(self, method: str, url: str, body: dict[str, Any] | None) -> dict[str, Any]:
        """One request: the JSON reply; `http_retry.Transient` (or httpx's error) for a failure
        worth retrying; `EngineError` for a permanent one."""
        resp = await self._client.request(method, url, json=body)
        if resp.status_code >= 400:
            problem = f"HTTP {resp.status_code}: {_server_message(resp)}"
            http_retry.raise_if_retry_status(resp, problem)
            message = f"{url}: {problem}"
            if resp.status_code == 400 and _CONTEXT_REFUSAL.search(resp.text):
                raise ContextLengthError(message)
            raise EngineError(message)
        try:
            data = resp.json()
        except ValueError:
            raise http_retry.Transient("response is not valid JSON") from None
        if not isinstance(data, dict):
            raise http_retry.Transient("response is not a JSON object")
        return data

    def _problem(self, failure: BaseException) -> str:
        """One line for a failed attempt."""
        if http_retry.is_timeout(failure):
            return f"timed out after {self.timeout_s:g}s"
        if isinstance(failure, httpx.TransportError):
            return f"connection failed ({type(failure).__name__}: {failure})"
        return str(failure)


# -- response parsing (pure functions) -----------------------------------------------------------


def _token_ids_and_logprobs(choice: dict[str, Any]) -> tuple[list[int], list[float]]:
    lp = choice.get("logprobs")
    if not isinstance(lp, dict):
        raise ValueError("no logprobs in the reply: the server ignored `logprobs`")
    logprobs = [float(x) for x in lp["token_logprobs"]]
    if isinstance(choice.get("token_ids"), list):
        ids = [int(t) for t in choice["token_ids"]]
    else:
        ids = [_token_id(t) for t in lp["tokens"]]
    if len(ids) != len(logprobs):
        raise ValueError(f"{len(ids)} token ids but {len(logprobs)} logprobs")
    return ids, logprobs


def _token_id(token: str) -> int:
    if not token.startswith(TOKEN_ID_PREFIX):
        raise ValueError(
            f"token {token!r} is text, not an id: the server returns no token ids "
            "(serve with vLLM or a recent SGLang, or use engine.path=chat)"
        )
    return int(token.removeprefix(TOKEN_ID_PREFIX))


def _native_tool_calls(raw_calls: list[dict[str, Any]]) -> tuple[list[ToolCall], list[str]]:
    """(calls whose arguments are a JSON object, `<tool_call>` blocks for the others)."""
    calls: list[ToolCall] = []
    malformed: list[str] = []
    for n, raw in enumerate(raw_calls):
        fn = raw.get("function") or {}
        name = str(fn.get("name") or "")
        args: Any = fn.get("arguments")
        text = args if isinstance(args, str) else json.dumps(args)
        if args is None or (isinstance(args, str) and not args.strip()):
            args = {}  # servers send "" for a call without arguments
        elif isinstance(args, str):
            with contextlib.suppress(json.JSONDecodeError):  # kept raw: reported below
                args = json.loads(args)
        if name and isinstance(args, dict):
            calls.append(ToolCall(id=str(raw.get("id") or f"call_{n}"), name=name, arguments=args))
        else:
            body = f'{{"name": {json.dumps(name)}, "arguments": {text}}}'
            malformed.append(f"{OPEN}\n{body}\n{CLOSE}")
    return calls, malformed


def _join_reasoning(reasoning: str | None, content: str) -> str:
    if not reasoning:
        return content
    return f"<think>\n{reasoning.strip()}\n</think>\n\n{content}"


def _finish(reason: str | None) -> FinishReason:
    return _FINISH.get(reason or "stop", "stop")


def _usage(data: dict[str, Any], prompt_tokens: int, completion_tokens: int) -> Usage:
    usage = data.get("usage") or {}
    return Usage(
        prompt_tokens=int(usage.get("prompt_tokens") or prompt_tokens),
        completion_tokens=int(usage.get("completion_tokens") or completion_tokens),
    )


# How servers say that a prompt is too long: OpenAI's error code, vLLM's and SGLang's texts
# ("This model's maximum context length is ...", "... longer than the model's context length").
_CONTEXT_REFUSAL = re.compile(r"context_length_exceeded|context length", re.I)


def _server_message(resp: httpx.Response) -> str:
    """The server's own error text, on one short line."""
    try:
        data = resp.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data.get("message")))
        if isinstance(err, dict):
            err = err.get("message")
        if err:
            return " ".join(str(err).split())[:300]
    return " ".join(resp.text.split())[:300] or resp.reason_phrase


def _why(e: Exception) -> str:
    return f"missing {e}" if isinstance(e, KeyError) else str(e)
