"""WeightPusher against a loopback server speaking vLLM's and SGLang's weight-update endpoints
(tests/fake_openai.py): the exact paths and bodies, and a refusal as one line."""

from __future__ import annotations

import asyncio
import socket

import pytest

from fake_openai import FakeOpenAIServer
from wideseek.http_retry import RetryPolicy
from wideseek.llm.engine import EngineError, GenerateRequest
from wideseek.llm.http import HttpEngine
from wideseek.llm.weight_push import (
    WeightPusher,
    WeightPushError,
    adapter_request,
    adapter_version_name,
)


def push(kind: str, url: str, *calls: tuple[str, tuple]) -> None:
    async def go() -> None:
        policy = RetryPolicy(attempts=2, backoff_s=0.01, jitter_s=0.0)
        async with WeightPusher(kind, url, retry=policy) as pusher:  # type: ignore[arg-type]
            for method, args in calls:
                await getattr(pusher, method)(*args)

    asyncio.run(go())


@pytest.mark.parametrize(
    ("kind", "prefix"), [("vllm", "/v1/load_lora_adapter"), ("sglang", "/load_lora_adapter")]
)
def test_an_adapter_is_loaded_and_unloaded_by_the_server_s_own_endpoints(kind, prefix, tmp_path):
    with FakeOpenAIServer() as srv:
        calls = [
            ("load_adapter", ("policy-v1", str(tmp_path))),
            ("load_adapter", ("policy-v2", "/shared/v2")),
            ("unload_adapter", ("policy-v1",)),
        ]
        push(kind, srv.base_url + "/v1", *calls)
        assert srv.adapters == {"policy-v2": "/shared/v2"}
        paths = [r.path for r in srv.requests]
        assert paths == [prefix, prefix, prefix.replace("/load_", "/unload_")]
        assert srv.requests[0].body == {"lora_name": "policy-v1", "lora_path": str(tmp_path)}
        assert srv.requests[2].body == {"lora_name": "policy-v1"}


@pytest.mark.parametrize("kind", ["vllm", "sglang"])
def test_a_refused_adapter_is_one_line_with_the_server_s_words(kind):
    with FakeOpenAIServer() as srv:
        srv.refuse_weights = "LoRA rank 64 is greater than max_lora_rank 16."
        with pytest.raises(WeightPushError) as e:
            push(kind, srv.base_url, ("load_adapter", ("policy-v1", "/shared/v1")))
        text = str(e.value)
        assert "\n" not in text and "refused adapter 'policy-v1' from /shared/v1" in text
        assert "greater than max_lora_rank 16" in text
        assert len(srv.requests) == 1  # a refusal is an answer: not retried


def test_full_weights_reload_on_sglang_and_refused_for_vllm():
    with FakeOpenAIServer() as srv:
        push("sglang", srv.base_url, ("reload_weights", ("/shared/checkpoint-3",)))
        assert srv.weights_path == "/shared/checkpoint-3"
        assert srv.requests[-1].path == "/update_weights_from_disk"
        with pytest.raises(WeightPushError, match="vLLM has no stable HTTP endpoint"):
            push("vllm", srv.base_url, ("reload_weights", ("/shared/checkpoint-3",)))


def test_an_unreachable_server_is_one_line_after_the_retries():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(WeightPushError, match=r"could not push .* gave up after 2 attempts"):
        push("vllm", f"http://127.0.0.1:{port}", ("load_adapter", ("p-v1", "/x")))


def test_requests_name_the_adapter_as_each_server_expects():
    name = adapter_version_name("wideseek-policy", 3)
    assert name == "wideseek-policy-v3"
    assert adapter_request("vllm", "Qwen/Qwen3-4B", name) == (name, {})
    base = "Qwen/Qwen3-4B"
    assert adapter_request("sglang", base, name) == (base, {"lora_path": name})


@pytest.mark.parametrize("kind", ["vllm", "sglang"])
def test_after_a_push_requests_sample_with_the_new_adapter_and_the_old_one_is_refused(kind):
    """The real HttpEngine against a server resolving adapters as vLLM / SGLang do."""

    async def generate(srv: FakeOpenAIServer, version: int) -> None:
        model, extra = adapter_request(kind, srv.model, adapter_version_name("pol", version))
        async with HttpEngine(srv.base_url, model, extra_body=extra, max_retries=0) as engine:
            await engine.generate(GenerateRequest(prompt_token_ids=[1, 2]))

    with FakeOpenAIServer(lora_addressing=kind) as srv:
        push(kind, srv.base_url, ("load_adapter", ("pol-v0", "/shared/v0")))
        asyncio.run(generate(srv, 0))
        calls = [("load_adapter", ("pol-v1", "/shared/v1")), ("unload_adapter", ("pol-v0",))]
        push(kind, srv.base_url, *calls)
        asyncio.run(generate(srv, 1))
        assert srv.sampled_with == ["pol-v0", "pol-v1"]
        with pytest.raises(EngineError, match="pol-v0"):  # unloaded: the server says so
            asyncio.run(generate(srv, 0))
