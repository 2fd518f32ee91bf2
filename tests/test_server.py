import json

import httpx
import openai
import pytest

from scripted_engine import ScriptedEngine
from tiny_lm import make_tiny_lm
from wideseek.cli import main
from wideseek.llm.engine import GenerateRequest, SamplingParams
from wideseek.llm.local import LocalEngine
from wideseek.llm.server import create_app
from wideseek.llm.toolcall import format_tool_call
from wideseek.serving import BackgroundServer

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "search",
            "description": "web search",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        },
    }
]
CALL_TEXT = "<think>two lookups</think>\nLooking.\n" + "\n".join(
    format_tool_call("search", {"query": q}) for q in ("capital of Peru", "capital of Chile")
)


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    model_dir = make_tiny_lm(tmp_path_factory.mktemp("lm"))
    engine = LocalEngine(model_dir, device="cpu", model_name="tiny")
    with BackgroundServer(create_app(engine)) as server:
        yield engine, server.url


@pytest.fixture(scope="module")
def scripted():
    engine = ScriptedEngine(responder=lambda request: CALL_TEXT)
    with BackgroundServer(create_app(engine)) as server:
        yield engine, server.url


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)


def test_models_list(local):
    _, url = local
    assert [m.id for m in client(url).models.list()] == ["tiny"]


def test_chat_with_tools_returns_parsed_tool_calls(scripted):
    engine, url = scripted
    history = [
        {"role": "user", "content": "Capitals of Peru and Chile?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c0",
                    "type": "function",
                    "function": {"name": "search", "arguments": '{"query": "Peru"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c0", "content": "Lima."},
    ]
    reply = client(url).chat.completions.create(model="scripted", messages=history, tools=TOOLS)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Looking."
    calls = choice.message.tool_calls
    assert [c.function.name for c in calls] == ["search", "search"]
    assert json.loads(calls[1].function.arguments) == {"query": "capital of Chile"}
    assert len({c.id for c in calls}) == 2
    seen = engine.requests[-1]  # the engine got wideseek Messages, arguments decoded
    assert seen.messages[1].tool_calls[0].arguments == {"query": "Peru"}
    assert seen.messages[2].role == "tool" and seen.tools == TOOLS


def test_streaming_chat_sends_openai_chunks(scripted):
    _, url = scripted
    stream = client(url).chat.completions.create(
        model="scripted",
        messages=[{"role": "user", "content": "go"}],
        tools=TOOLS,
        stream=True,
        stream_options={"include_usage": True},
    )
    content, calls, finish, usage = "", {}, None, None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            content += choice.delta.content or ""
            for call in choice.delta.tool_calls or []:
                calls.setdefault(call.index, call.function.arguments)
            finish = choice.finish_reason or finish
    assert content == "Looking."
    assert [json.loads(a)["query"] for a in calls.values()] == [
        "capital of Peru",
        "capital of Chile",
    ]
    assert finish == "tool_calls" and usage is not None


async def test_completions_on_token_ids_match_the_engine(local):
    engine, url = local
    prompt = [5, 6, 7, 8]
    direct = await engine.generate(
        GenerateRequest(
            prompt_token_ids=prompt, sampling=SamplingParams(temperature=0, max_tokens=6)
        )
    )
    api = openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    reply = await api.completions.create(
        model="tiny",
        prompt=prompt,
        max_tokens=6,
        temperature=0,
        logprobs=1,
        extra_body={"return_tokens_as_token_ids": True},
    )
    lp = reply.choices[0].logprobs
    assert [int(t.removeprefix("token_id:")) for t in lp.tokens] == direct.token_ids
    assert lp.token_logprobs == pytest.approx(direct.logprobs, abs=1e-5)
    assert reply.choices[0].text == direct.text
    assert reply.usage.prompt_tokens == 4 and reply.usage.completion_tokens == len(direct.token_ids)


def test_text_prompts_and_a_prompt_batch(local):
    engine, url = local
    reply = client(url).completions.create(
        model="tiny", prompt=["Lima is", "Quito"], max_tokens=3, temperature=0
    )
    assert [c.index for c in reply.choices] == [0, 1]
    assert reply.usage.prompt_tokens == len(engine.tokenizer.encode("Lima is")) + len(
        engine.tokenizer.encode("Quito")
    )


async def test_chat_through_a_real_model_matches_the_chat_path(local):
    engine, url = local
    messages = [{"role": "user", "content": "capital of Peru?"}]
    reply = client(url).chat.completions.create(
        model="tiny", messages=messages, max_tokens=5, temperature=0, logprobs=True
    )
    direct = await engine.generate(
        GenerateRequest(
            messages=[{"role": "user", "content": "capital of Peru?"}],
            sampling=SamplingParams(temperature=0, max_tokens=5),
        )
    )
    assert reply.choices[0].message.content == direct.text.strip()
    assert [t.logprob for t in reply.choices[0].logprobs.content] == pytest.approx(direct.logprobs)


def test_errors_are_openai_shaped(local):
    _, url = local
    api = client(url)
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        api.completions.create(model="nope", prompt=[1])
    with pytest.raises(openai.BadRequestError, match="temperature"):
        api.completions.create(model="tiny", prompt=[1], temperature=-1)
    with pytest.raises(openai.BadRequestError, match="n=1"):
        api.completions.create(model="tiny", prompt=[1], n=2)
    with pytest.raises(openai.BadRequestError, match="token ids"):
        api.completions.create(model="tiny", prompt=[10**7])
    with pytest.raises(openai.BadRequestError, match="not JSON"):
        api.chat.completions.create(
            model="tiny",
            messages=[
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "x", "type": "function", "function": {"name": "s", "arguments": "{"}}
                    ],
                }
            ],
        )
    raw = httpx.post(url + "/v1/chat/completions", content=b"{not json")
    assert raw.status_code == 400 and "message" in raw.json()["error"]
    missing = httpx.get(url + "/v1/nothing")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"


def test_serve_command_rejects_a_missing_model(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--model", str(tmp_path)])
    assert exit_.value.code == 1
    assert "not a model directory" in capsys.readouterr().err


def test_serve_command_builds_the_app_for_a_model(local, monkeypatch):
    engine, _ = local
    seen = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: seen.update(app=app, **kw))
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--model", str(engine.model_dir), "--port", "8123"])
    assert exit_.value.code == 0
    assert (seen["host"], seen["port"]) == ("127.0.0.1", 8123)
    assert {"/v1/models", "/v1/chat/completions", "/v1/completions"} <= {
        route.path for route in seen["app"].routes
    }
