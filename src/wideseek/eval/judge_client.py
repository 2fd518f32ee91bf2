"""A prompt completer over any OpenAI-compatible `/v1/chat/completions` endpoint (httpx).

Contract: `await ChatCompleter(...).complete(prompt)` sends one user message and returns the
reply's content (None when the model gave none). Connection errors, timeouts, 429 and 5xx are
retried with exponential backoff (`wideseek.http_retry`); other 4xx and exhausted retries
raise `JudgeError` with a one-line reason. At most `max_concurrency` requests are in flight.
Replies are cached on disk by (model, prompt) when a cache path is given. The API key is read
from the environment variable named `api_key_env` and never logged. Knows nothing about tables
or grading.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import httpx

from wideseek import http_retry
from wideseek.eval.judge_cache import JudgeCache
from wideseek.eval.judges import JudgeError


class ChatCompleter:
    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        cache_path: str | Path | None = None,
        max_concurrency: int = 8,
        max_retries: int = 5,
        backoff_s: float = 2.0,
        timeout_s: float = 300.0,
        max_tokens: int = 10240,
        temperature: float = 0.0,
    ) -> None:
        self.model = model
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.api_key_env = api_key_env
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.cache = JudgeCache(cache_path) if cache_path is not None else None
        self._slots = asyncio.Semaphore(max_concurrency)
        self._client: httpx.AsyncClient | None = None
        self.calls = 0  # requests actually sent (cache hits excluded), for reports and tests

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.api_key_env)
        return {"Authorization": f"Bearer {key}"} if key else {}

    async def complete(self, prompt: str) -> str | None:
        if self.cache is not None:
            hit = self.cache.get(self.model, prompt)
            if hit is not None:
                return hit
        async with self._slots:
            text = await self._post_with_retries(prompt)
        if text is not None and self.cache is not None:
            self.cache.put(self.model, prompt, text)
        return text

    async def _post_with_retries(self, prompt: str) -> str | None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s)
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        client = self._client
        url = self.url

        async def attempt() -> str | None:
            self.calls += 1
            response = await client.post(url, json=body, headers=self._headers())
            status = response.status_code
            if status >= 400:
                http_retry.raise_if_retry_status(response, f"HTTP {status}")
                raise JudgeError(f"judge {url}: HTTP {status}")
            return _content(response, url)

        policy = http_retry.RetryPolicy(
            attempts=self.max_retries + 1,
            backoff_s=self.backoff_s,
            max_backoff_s=max(30.0, self.backoff_s),
            jitter_s=self.backoff_s / 2,
            max_retry_after_s=60.0,
        )
        try:
            return await http_retry.call_with_retries(attempt, policy)
        except http_retry.GaveUp as e:
            last = e.last
            transient = isinstance(last, http_retry.Transient)
            problem = str(last) if transient else _network_problem(last)
            raise JudgeError(f"judge {url}: {problem} after {e.attempts} attempts") from None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self.cache is not None:
            self.cache.close()


def _content(response: httpx.Response, url: str) -> str | None:
    try:
        payload: Any = response.json()
        content = payload["choices"][0]["message"].get("content")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
        raise JudgeError(f"judge {url}: not a chat-completions reply ({type(e).__name__})") from e
    return content if isinstance(content, str) else None


def _network_problem(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
