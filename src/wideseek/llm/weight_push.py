"""New weights onto a running vLLM or SGLang server, through the server's own HTTP endpoints.

Contract: `WeightPusher(kind, base_url)` speaks one server's weight-update API on its own
`httpx.AsyncClient`, each POST retried by `wideseek.http_retry` on 429/5xx and network errors;
a refusal (any other 4xx, or SGLang's `"success": false`) or a server that stays unreachable is
a `WeightPushError` with one line: the URL, the status and the server's own message.

- `load_adapter(name, path)` / `unload_adapter(name)`: a LoRA adapter directory (peft's
  `adapter_config.json` + `adapter_model.safetensors`), which the server must be able to read
  at `path` (a shared file system: the learner writes, the server reads).
  - vLLM ("Dynamically serving LoRA Adapters", docs.vllm.ai features/lora): POST
    `/v1/load_lora_adapter` {"lora_name", "lora_path"} and `/v1/unload_lora_adapter`
    {"lora_name"}; 200 on success, an error JSON otherwise. Needs the server started with
    `--enable-lora` (and `--max-lora-rank` >= the adapter's r) and the environment
    `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`. A request samples with the adapter by naming it
    as its `model` (an unknown name is HTTP 404).
  - SGLang (docs.sglang.io advanced_features/lora, "Dynamic LoRA loading"): POST
    `/load_lora_adapter` {"lora_name", "lora_path"} and `/unload_lora_adapter` {"lora_name"},
    answering {"success", "error_message", "loaded_adapters"}. Start it with `--enable-lora
    --max-lora-rank R --lora-target-modules ...` (a dynamically loaded adapter must fit them).
    A request on its OpenAI-compatible API samples with the adapter given by the body's
    `lora_path` (the adapter's *name*, despite the key), which every SGLang with dynamic
    loading reads; recent ones also read `model: "<base>:<adapter>"` and let it win over
    `lora_path`, older ones ignore `model`, so the base name there plus `lora_path` addresses
    the adapter on both (`adapter_request`).
  Each version is loaded under a new name (`<adapter>-v<version>`) and the previous one
  unloaded after: neither server reliably replaces an adapter in place under the same name
  (vLLM answers "already loaded" unless a newer `load_inplace` is given), and a request in
  flight keeps the adapter it named.
- `reload_weights(model_path)`: full weights from a checkpoint directory, SGLang only: POST
  `/update_weights_from_disk` {"model_path"} -> {"success", "message"} (docs.sglang.io
  advanced_features/sglang_for_rl). vLLM has no stable HTTP endpoint for that (its weight
  reloading is a Python/RPC API of the engine, or a dev-mode route), so it is refused here with
  one line: push a LoRA adapter to vLLM, or restart it on the new checkpoint.

It knows HTTP and these endpoints; nothing of training, checkpoints or agents.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import httpx

from wideseek import http_retry
from wideseek.errors import WideseekError
from wideseek.http_client import OwnsHttpClient

log = logging.getLogger(__name__)

ServerKind = Literal["vllm", "sglang"]
_ADAPTER_PATHS = {
    "vllm": ("/v1/load_lora_adapter", "/v1/unload_lora_adapter"),
    "sglang": ("/load_lora_adapter", "/unload_lora_adapter"),
}
SGLANG_RELOAD = "/update_weights_from_disk"


class WeightPushError(WideseekError, RuntimeError):
    """A server refused new weights, or could not be reached to take them."""


def adapter_version_name(adapter: str, version: int) -> str:
    """The name one version of a pushed adapter is served under."""
    return f"{adapter}-v{version}"


def adapter_request(kind: ServerKind, base_model: str, adapter: str) -> tuple[str, dict[str, str]]:
    """How a completion request samples with the loaded `adapter` (module docstring): its
    `model`, and the keys to add to its body (`HttpEngine(extra_body=...)`). vLLM serves the
    adapter under its own name; SGLang takes the base's name and `lora_path: <adapter>`."""
    if kind == "vllm":
        return adapter, {}
    return base_model, {"lora_path": adapter}


class WeightPusher(OwnsHttpClient):
    def __init__(
        self,
        kind: ServerKind,
        base_url: str,
        *,
        timeout_s: float = 300.0,
        retry: http_retry.RetryPolicy | None = None,
    ) -> None:
        if kind not in _ADAPTER_PATHS:
            raise WeightPushError(f"weight push: unknown server kind {kind!r} (vllm | sglang)")
        self.kind = kind
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.timeout_s = timeout_s
        self.retry = retry or http_retry.RetryPolicy(attempts=4)
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout_s))

    async def load_adapter(self, name: str, path: str) -> None:
        await self._post(_ADAPTER_PATHS[self.kind][0], {"lora_name": name, "lora_path": path})

    async def unload_adapter(self, name: str) -> None:
        await self._post(_ADAPTER_PATHS[self.kind][1], {"lora_name": name})

    async def reload_weights(self, model_path: str) -> None:
        if self.kind != "sglang":
            raise WeightPushError(
                f"{self.base_url}: vLLM has no stable HTTP endpoint to reload full weights; "
                "train a LoRA adapter (pushed by /v1/load_lora_adapter) or restart the server "
                "on the new checkpoint"
            )
        await self._post(SGLANG_RELOAD, {"model_path": model_path})

    async def _post(self, path: str, body: dict[str, Any]) -> None:
        url = f"{self.base_url}{path}"

        async def attempt() -> None:
            resp = await self._client.post(url, json=body)
            if resp.status_code >= 400:
                problem = f"HTTP {resp.status_code}: {_message(resp)}"
                http_retry.raise_if_retry_status(resp, problem)
                raise WeightPushError(f"{url}: the server refused {_what(body)} ({problem})")
            answer = _json(resp)
            if isinstance(answer, dict) and answer.get("success") is False:  # SGLang
                why = answer.get("error_message") or answer.get("message") or "no reason given"
                raise WeightPushError(f"{url}: the server refused {_what(body)} ({why})")

        def note(failure: BaseException, retry: int, pause: float) -> None:
            log.warning("%s: %s; retry %d in %.2fs", url, failure, retry, pause)

        try:
            await http_retry.call_with_retries(attempt, self.retry, on_retry=note)
        except http_retry.GaveUp as e:
            raise WeightPushError(
                f"{url}: could not push {_what(body)} ({_one_line(e.last)}; gave up after "
                f"{e.attempts} attempts)"
            ) from None


def _what(body: dict[str, Any]) -> str:
    if "lora_path" in body:
        return f"adapter {body['lora_name']!r} from {body['lora_path']}"
    if "lora_name" in body:
        return f"unloading adapter {body['lora_name']!r}"
    return f"weights from {body.get('model_path')}"


def _json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None  # vLLM answers a success with plain text


def _message(resp: httpx.Response) -> str:
    """The server's own words: OpenAI/vLLM `{"error": {"message"}}` or `{"message"}`, SGLang's
    `error_message`, else the text, on one line."""
    data = _json(resp)
    text = resp.text
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            error = error.get("message")
        text = str(error or data.get("message") or data.get("error_message") or data.get("detail")
                   or text)  # fmt: skip
    return " ".join(text.split())[:300]


def _one_line(failure: BaseException) -> str:
    if http_retry.is_timeout(failure):
        return "timed out"
    text = " ".join(str(failure).split())
    return f"{type(failure).__name__}: {text}" if text else type(failure).__name__
