"""HttpEngine against a real loopback HTTP server (tests/fake_openai.py): both paths, tool-call
parsing, retries, timeouts, unreachable servers, the concurrency cap and the API key."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from fake_openai import FakeOpenAIServer, Fault, chat_reply, completion_reply
from wideseek.config import EngineConfig
from wideseek.llm.engine import ContextLengthError, EngineError, GenerateRequest, SamplingParams
from wideseek.llm.http import HttpEngine
from wideseek.llm.toolcall import parse_tool_calls
from wideseek.types import Message

FAST = {"backoff_s": 0.01, "max_backoff_s": 0.05, "seed": 0}


def chat_request(text: str = "hi", **kw) -> GenerateRequest:
    return GenerateRequest(messages=[Message(role="user", content=text)], **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_chat_path_sends_messages_tools_and_sampling():
    tools = [{"type": "function", "function": {"name": "search", "parameters": {}}}]
    with FakeOpenAIServer(script=[chat_reply("Lima", usage=(12, 3))]) as srv:
        async with HttpEngine(srv.base_url + "/v1", "fake-model", **FAST) as engine:
            out = await engine.generate(
                chat_request(
                    "capital of Peru?",
                    tools=tools,
                    sampling=SamplingParams(temperature=0.3, max_tokens=50, stop=["\n\n"], seed=7),
                )
            )
        body = srv.bodies("chat")[0]
    assert out.text == "Lima" and out.finish_reason == "stop" and out.tool_calls is None
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (12, 3)
    assert body["messages"] == [{"role": "user", "content": "capital of Peru?"}]
    assert body["tools"] == tools
    assert (body["temperature"], body["max_tokens"], body["stop"], body["seed"]) == (
        0.3,
        50,
        ["\n\n"],
        7,
    )


async def test_top_k_is_sent_only_when_set_and_no_cut_is_minus_one():
    """vLLM and SGLang take top_k in the body (and otherwise apply the model's generation
    config); OpenAI refuses unknown keys, so an unset top_k must not be sent at all."""
    with FakeOpenAIServer() as srv:
        async with HttpEngine(srv.base_url, "fake-model", **FAST) as engine:
            for top_k in (None, 0, 20):
                await engine.generate(chat_request(sampling=SamplingParams(top_k=top_k)))
                await engine.generate(
                    GenerateRequest(prompt_token_ids=[1, 2], sampling=SamplingParams(top_k=top_k))
                )
    chat, tokens = srv.bodies("chat"), srv.bodies("completions")
    assert ["top_k" in b for b in chat] == ["top_k" in b for b in tokens] == [False, True, True]
    assert [b["top_k"] for b in chat[1:]] == [b["top_k"] for b in tokens[1:]] == [-1, 20]


async def test_extra_body_goes_into_every_generation_body_and_cannot_shadow_the_engine_s():
    """SGLang reads the LoRA adapter a request samples with from `lora_path` in the body."""
    with FakeOpenAIServer() as srv:
        extra = {"lora_path": "policy-v3"}
        async with HttpEngine(srv.base_url, "fake-model", extra_body=extra, **FAST) as engine:
            await engine.generate(chat_request())
            await engine.generate(GenerateRequest(prompt_token_ids=[1, 2]))
            await engine.check()
    assert [b["lora_path"] for b in srv.bodies()] == ["policy-v3"] * 2
    assert [r.body for r in srv.requests if r.path == "/v1/models"] == [{}]
    assert srv.bodies("completions")[0]["prompt"] == [1, 2]  # the engine's own keys stay
    with pytest.raises(EngineError, match=r"extra_body: model, prompt set by the engine"):
        HttpEngine(srv.base_url, extra_body={"prompt": [1], "model": "x", "lora_path": "a"})


async def test_agent_top_k_reaches_the_server():
    """RL sets agent.top_k=0: every request of every agent must carry it to the server."""
    from wideseek.agents.orchestrator import Orchestrator
    from wideseek.config import AgentConfig
    from wideseek.types import Task

    with FakeOpenAIServer(script=["\\boxed{Lima}"]) as srv:
        async with HttpEngine(srv.base_url, "fake-model", **FAST) as engine:
            config = AgentConfig(mode="single", top_k=0, thinking=False)
            orchestrator = Orchestrator(engine, lambda role: [], config)
            await orchestrator.run(Task(id="t", question="capital of Peru?", kind="qa"))
    assert [b["top_k"] for b in srv.bodies("chat")] == [-1]


async def test_native_tool_calls_and_reasoning_are_kept():
    reply = chat_reply(
        None,
        reasoning="need two searches",
        tool_calls=[("search", {"query": "Chile"}), ("access", '{"url": "u1"'), ("ping", "")],
    )
    with FakeOpenAIServer(script=[reply]) as srv:
        async with HttpEngine(srv.base_url, "fake-model", **FAST) as engine:
            out = await engine.generate(chat_request())
    assert out.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in out.tool_calls] == [
        ("search", {"query": "Chile"}),
        ("ping", {}),
    ]
    assert out.text.startswith("<think>\nneed two searches\n</think>")
    # The malformed call is kept as text, and the shared parser reports it.
    parsed = parse_tool_calls(out.text)
    assert parsed.thinking == "need two searches"
    assert len(parsed.errors) == 1 and "invalid JSON" in parsed.errors[0]
    assert '"url": "u1"' in out.text


async def test_token_path_returns_exact_ids_and_logprobs():
    ids, lps = [5, 151645, 0, 42], [-0.25, -1.5, -3.0, -0.0625]
    reply = completion_reply("abc", ids, lps, finish_reason="length", prompt_tokens=3)
    with FakeOpenAIServer(script=[reply]) as srv:
        async with HttpEngine(srv.base_url, "fake-model", **FAST) as engine:
            sampling = SamplingParams(max_tokens=4, stop=["</x>"], stop_token_ids=[9])
            out = await engine.generate(
                GenerateRequest(prompt_token_ids=[1, 2, 3], sampling=sampling)
            )
        body = srv.bodies("completions")[0]
    assert out.token_ids == ids and out.logprobs == lps
    assert out.text == "abc" and out.finish_reason == "length"
    assert out.usage.completion_tokens == 4
    assert body["prompt"] == [1, 2, 3]
    assert body["logprobs"] == 1
    assert body["return_tokens_as_token_ids"] is True and body["return_token_ids"] is True
    assert (body["max_tokens"], body["stop"], body["stop_token_ids"]) == (4, ["</x>"], [9])


async def test_token_path_reads_top_level_token_ids():
    """SGLang / newer vLLM with return_token_ids: ids in the choice, tokens as text."""
    reply = completion_reply("ab", [7, 8], [-1.0, -2.0])
    reply["choices"][0]["token_ids"] = [70, 80]
    reply["choices"][0]["logprobs"]["tokens"] = ["a", "b"]
    with FakeOpenAIServer(script=[reply]) as srv:
        async with HttpEngine(srv.base_url, "fake-model", **FAST) as engine:
            out = await engine.generate(GenerateRequest(prompt_token_ids=[1]))
    assert out.token_ids == [70, 80]


async def test_token_strings_instead_of_ids_is_a_clear_error():
    reply = completion_reply("ab", [7, 8])
    reply["choices"][0]["logprobs"]["tokens"] = ["a", "b"]  # what servers without the flag send
    with FakeOpenAIServer(script=[reply]) as srv:
        async with HttpEngine(srv.base_url, "fake-model", **FAST) as engine:
            with pytest.raises(EngineError, match="returns no token ids"):
                await engine.generate(GenerateRequest(prompt_token_ids=[1]))


@pytest.mark.parametrize("status", [500, 429, 503])
async def test_retries_transient_errors_then_succeeds(status):
    with FakeOpenAIServer(script=["fine"]) as srv:
        srv.inject(Fault.http(status, retry_after=0.01), times=2)
        async with HttpEngine(srv.base_url, "fake-model", max_retries=3, **FAST) as engine:
            out = await engine.generate(chat_request())
    assert out.text == "fine"
    assert len(srv.bodies("chat")) == 3


async def test_retries_malformed_json():
    with FakeOpenAIServer(script=["fine"]) as srv:
        srv.inject(Fault.bad_json())
        async with HttpEngine(srv.base_url, "fake-model", **FAST) as engine:
            assert (await engine.generate(chat_request())).text == "fine"


async def test_retries_exhausted_is_one_clear_error(caplog):
    with FakeOpenAIServer() as srv:
        srv.inject(Fault.http(500), times=3)
        async with HttpEngine(srv.base_url, "fake-model", max_retries=2, **FAST) as engine:
            with pytest.raises(EngineError) as info:
                await engine.generate(chat_request())
    message = str(info.value)
    assert "\n" not in message
    assert f"{srv.base_url}/v1/chat/completions" in message
    assert "HTTP 500" in message and "gave up after 3 attempts" in message
    assert len(srv.bodies()) == 3
    assert "retry 1/2" in caplog.text


async def test_client_error_is_not_retried():
    with FakeOpenAIServer() as srv:
        srv.inject(Fault.http(400))
        async with HttpEngine(srv.base_url, "fake-model", **FAST) as engine:
            with pytest.raises(EngineError, match="HTTP 400: injected fault 400"):
                await engine.generate(chat_request())
    assert len(srv.bodies()) == 1


VLLM_TOO_LONG = (
    "This model's maximum context length is 4096 tokens. However, you requested 4600 tokens "
    "(4100 in the messages, 500 in the completion). Please reduce the length of the messages."
)


async def test_a_prompt_refused_as_too_long_is_a_context_length_error():
    with FakeOpenAIServer() as srv:
        srv.inject(Fault.http(400, message=VLLM_TOO_LONG))
        srv.inject(Fault.http(400, message="messages[0]: unknown role 'robot'"))
        async with HttpEngine(srv.base_url, "fake-model", **FAST) as engine:
            with pytest.raises(ContextLengthError, match="maximum context length is 4096"):
                await engine.generate(chat_request())
            with pytest.raises(EngineError) as other:
                await engine.generate(chat_request())
    assert not isinstance(other.value, ContextLengthError)


async def test_timeout_then_retry_succeeds_and_timeout_exhausted_fails():
    with FakeOpenAIServer(script=["late but fine"]) as srv:
        srv.inject(Fault.delay(1.0))
        async with HttpEngine(srv.base_url, "fake-model", timeout_s=0.2, **FAST) as engine:
            assert (await engine.generate(chat_request())).text == "late but fine"
        srv.inject(Fault.delay(1.0), times=2)
        async with HttpEngine(
            srv.base_url, "fake-model", timeout_s=0.2, max_retries=1, **FAST
        ) as engine:
            with pytest.raises(EngineError, match=r"timed out after 0\.2s"):
                await engine.generate(chat_request())


async def test_connection_refused_is_engine_error():
    url = f"http://127.0.0.1:{free_port()}"
    async with HttpEngine(url, "m", max_retries=1, **FAST) as engine:
        with pytest.raises(EngineError, match="connection failed") as info:
            await engine.generate(chat_request())
        assert url in str(info.value)
        with pytest.raises(EngineError, match="server not reachable"):
            await engine.check()


async def test_check_lists_models_and_picks_default():
    with FakeOpenAIServer(model="qwen3-4b") as srv:
        async with HttpEngine(srv.base_url, **FAST) as engine:
            assert engine.model_name == ""
            await engine.generate(chat_request())  # resolves the model lazily
            assert engine.model_name == "qwen3-4b"
            assert srv.bodies("chat")[0]["model"] == "qwen3-4b"
        async with HttpEngine(srv.base_url, "other", **FAST) as engine:
            with pytest.raises(EngineError, match="'other' is not served"):
                await engine.check()


async def test_concurrency_cap_is_honoured_at_the_server():
    with FakeOpenAIServer(latency_s=0.2) as srv:
        async with HttpEngine(srv.base_url, "fake-model", max_concurrency=3, **FAST) as engine:
            await asyncio.gather(*(engine.generate(chat_request(str(i))) for i in range(12)))
    assert len(srv.bodies()) == 12
    assert 1 < srv.max_in_flight <= 3  # calls overlap, and never beyond the cap


async def test_api_key_from_env_is_sent_but_never_shown(monkeypatch, caplog):
    secret = "sk-test-very-secret"
    monkeypatch.setenv("WIDESEEK_TEST_KEY", secret)
    caplog.set_level(logging.DEBUG)
    with FakeOpenAIServer(script=["ok"]) as srv:
        srv.inject(Fault.http(503))
        config = EngineConfig(
            base_url=srv.base_url, model="fake-model", api_key_env="WIDESEEK_TEST_KEY"
        )
        engine = HttpEngine.from_config(config)
        engine.backoff_s = 0.01
        async with engine:
            await engine.generate(chat_request())
    assert srv.requests[-1].headers["authorization"] == f"Bearer {secret}"
    assert secret not in repr(engine) and secret not in caplog.text
    assert engine.renderer is None  # path auto without a tokenizer: chat


def test_from_config_needs_a_url_and_a_tokenizer_for_tokens():
    with pytest.raises(EngineError, match="base_url"):
        HttpEngine.from_config(EngineConfig())
    with pytest.raises(EngineError, match=r"engine\.tokenizer"):
        HttpEngine.from_config(EngineConfig(base_url="http://x", path="tokens"))


async def test_fake_server_responder_sees_each_request():
    def echo(endpoint: str, body: dict) -> str:
        return f"{endpoint}: {body['messages'][-1]['content']}"

    with FakeOpenAIServer(responder=echo) as srv:
        async with HttpEngine(srv.base_url, "fake-model", **FAST) as engine:
            outs = await asyncio.gather(*(engine.generate(chat_request(f"q{i}")) for i in range(3)))
    assert sorted(o.text for o in outs) == ["chat: q0", "chat: q1", "chat: q2"]
