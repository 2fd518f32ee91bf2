"""HFChatRenderer with wideseek's chat template on a tiny trained tokenizer: the Qwen3 format,
round trips, and the prefix consistency that training relies on; plus the token path end to end
through HttpEngine and the fake server."""

from __future__ import annotations

import copy
import json

import pytest

from fake_openai import FakeOpenAIServer, completion_reply
from tiny_tokenizer import TOOLS, build_tiny_tokenizer
from wideseek.config import EngineConfig
from wideseek.llm.engine import ChatRenderer, EngineError, GenerateRequest
from wideseek.llm.http import HttpEngine
from wideseek.llm.renderer import HFChatRenderer
from wideseek.llm.toolcall import format_tool_call, parse_tool_calls
from wideseek.train.sft_data import messages_example
from wideseek.types import Message, ToolCall


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    return build_tiny_tokenizer(tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="module")
def renderer(tokenizer_dir):
    return HFChatRenderer.from_pretrained(tokenizer_dir)


def history() -> list[Message]:
    return [
        Message(role="system", content="You are a helpful assistant."),
        Message(role="user", content="What is the capital of Peru?"),
    ]


def reply_ids(renderer: HFChatRenderer, text: str) -> list[int]:
    """What a server returns for a reply that stopped on EOS: its ids, end of turn included."""
    return renderer.tokenizer.encode(text, add_special_tokens=False) + renderer.end_of_turn_ids


def test_renders_the_qwen3_format(renderer):
    text = renderer.decode(renderer.render_prompt(history(), TOOLS))
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.\n\n# Tools\n\n")
    schema_line = next(ln for ln in text.splitlines() if ln.startswith("{"))
    assert json.loads(schema_line) == TOOLS[0]
    assert "<tools>\n" in text and "\n</tools>" in text
    assert (
        '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
        in (text)
    )
    assert text.endswith(
        "<|im_start|>user\nWhat is the capital of Peru?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert renderer.decode(renderer.end_of_turn_ids) == "<|im_end|>"


def test_round_trip_of_a_multi_turn_conversation(renderer):
    call = ToolCall(id="c0", name="search", arguments={"query": "capital of Peru"})
    messages = [
        *history(),
        Message(role="assistant", content="<think>look it up</think>", tool_calls=[call]),
        Message(role="tool", content="Lima is the capital of Peru.", tool_call_id="c0"),
        Message(role="assistant", content="<think>found</think>\n\nLima"),
        Message(role="user", content="And of Chile?"),
    ]
    ids = renderer.render_prompt(messages, TOOLS)
    text = renderer.render_text([m.to_openai() for m in messages], TOOLS)
    assert renderer.decode(ids) == text
    # Old thinking is kept (unlike Qwen3's own template), and the call is parsable back.
    assert "<think>look it up</think>" in text and "<think>found</think>" in text
    turn = text.split("<|im_start|>assistant\n")[1].split("<|im_end|>")[0]
    assert parse_tool_calls(turn).calls == [call.model_copy(update={"id": "call_0"})]
    assert "<|im_start|>user\n<tool_response>\nLima is the capital of Peru.\n</tool_response>" in (
        text
    )


@pytest.mark.parametrize(
    "reply",
    [
        "<think>I should search.</think>\n\n" + format_tool_call("search", {"query": "Peru"}),
        "Plain answer: Lima.",
        "<think>multi\nline</think>\n\n| country | capital |\n|---|---|\n| Peru | Lima |",
    ],
)
def test_prefix_consistency(renderer, reply):
    prompt = renderer.render_prompt(history(), TOOLS)
    tool_text = "Lima is the capital of Peru."
    rerendered = renderer.render_prompt(
        [
            *history(),
            Message(role="assistant", content=reply),
            Message(role="tool", content=tool_text),
        ],
        TOOLS,
    )
    grown = prompt + reply_ids(renderer, reply) + renderer.render_tool_response(tool_text)
    assert rerendered == grown


def test_render_tool_turn_closes_an_unclosed_response(renderer):
    closed = reply_ids(renderer, "ok")
    unclosed = closed[: -len(renderer.end_of_turn_ids)]  # cut by a stop string
    tail = renderer.render_tool_responses(["r"])
    assert renderer.render_tool_turn(closed, ["r"]) == tail
    assert renderer.render_tool_turn(unclosed, ["r"]) == renderer.end_of_turn_ids + tail
    assert unclosed + renderer.render_tool_turn(unclosed, ["r"]) == closed + tail


def test_several_tool_results_group_into_one_turn(renderer):
    ids = renderer.render_tool_responses(["r1", "r2"])
    assert renderer.decode(ids) == (
        "\n<|im_start|>user\n<tool_response>\nr1\n</tool_response>\n<tool_response>\nr2\n"
        "</tool_response><|im_end|>\n<|im_start|>assistant\n"
    )


def test_thinking_off_prefills_an_empty_think_block(tokenizer_dir):
    renderer = HFChatRenderer.from_pretrained(tokenizer_dir, enable_thinking=False)
    assert renderer.decode(renderer.render_prompt(history(), None)).endswith(
        "<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )
    tail = renderer.decode(renderer.render_tool_response("x"))
    assert tail.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_markup_tokens_are_single_tokens_kept_by_decode(renderer):
    tok = renderer.tokenizer
    for marker in ("<tool_call>", "</tool_call>", "<tool_response>", "<think>", "</think>"):
        (token_id,) = tok.encode(marker, add_special_tokens=False)
        assert tok.decode([token_id], skip_special_tokens=True) == marker
    assert tok.decode(renderer.end_of_turn_ids, skip_special_tokens=True) == ""


def test_template_that_rewrites_earlier_turns_is_refused(tokenizer_dir):
    """A template that renders the last assistant turn differently from earlier ones (as Qwen3's
    does with thinking) cannot give tool-response ids by difference: a clear error."""
    renderer = HFChatRenderer.from_pretrained(tokenizer_dir)
    renderer.tokenizer = copy.deepcopy(renderer.tokenizer)
    renderer.tokenizer.chat_template = (
        "{%- for m in messages -%}<|im_start|>{{ m.role }}\n"
        "{%- if m.role == 'assistant' and not loop.last -%}[old]{%- endif -%}"
        "{{ m.content }}<|im_end|>\n{%- endfor -%}"
        "{%- if add_generation_prompt -%}<|im_start|>assistant\n{%- endif -%}"
    )
    with pytest.raises(ValueError, match="not prefix-consistent"):
        renderer.render_tool_response("x")


def test_bad_tokenizer_dirs_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        HFChatRenderer.from_pretrained(tmp_path / "missing")
    with pytest.raises(ValueError, match="cannot load tokenizer"):
        HFChatRenderer.from_pretrained(tmp_path)
    config = EngineConfig(base_url="http://127.0.0.1:1", tokenizer=str(tmp_path / "missing"))
    with pytest.raises(EngineError, match=r"engine\.tokenizer: .* not found"):
        HttpEngine.from_config(config)


async def test_token_path_end_to_end(tokenizer_dir):
    """from_config with a tokenizer dir: the renderer's ids go out, exact ids come back."""
    with FakeOpenAIServer() as srv:
        config = EngineConfig(
            base_url=srv.base_url, model="fake-model", tokenizer=str(tokenizer_dir)
        )
        async with HttpEngine.from_config(config, context_length=2048) as engine:
            assert isinstance(engine.renderer, ChatRenderer)
            prompt = engine.renderer.render_prompt(history(), TOOLS)
            answer = reply_ids(engine.renderer, "Lima")
            srv.script.append(completion_reply("Lima", answer, [-0.1] * len(answer)))
            out = await engine.generate(GenerateRequest(prompt_token_ids=prompt))
        body = srv.bodies("completions")[0]
    assert body["prompt"] == prompt
    assert body["max_tokens"] == 2048 - len(prompt)  # what is left of the context
    assert out.token_ids == answer and out.logprobs == [-0.1] * len(answer)


async def test_token_path_with_a_full_context_sends_nothing(tokenizer_dir):
    with FakeOpenAIServer() as srv:
        config = EngineConfig(base_url=srv.base_url, model="m", tokenizer=str(tokenizer_dir))
        async with HttpEngine.from_config(config, context_length=300) as engine:
            prompt = engine.renderer.render_prompt(history(), TOOLS)
            assert len(prompt) > 300
            out = await engine.generate(GenerateRequest(prompt_token_ids=prompt))
    assert out.finish_reason == "length" and out.token_ids == []
    assert srv.bodies() == []


def test_a_prompt_past_the_tokenizers_length_is_ours_to_judge_without_a_warning(
    tokenizer_dir, caplog
):
    # agents flag context_overflow and SFT skips long examples: the tokenizer's "indexing
    # errors" warning on every long demonstration would only alarm
    from transformers.utils import logging as hf_logging

    renderer = HFChatRenderer.from_pretrained(tokenizer_dir)
    renderer.tokenizer.model_max_length = 8
    hf_logging.enable_propagation()  # its records reach caplog
    try:
        ids = renderer.render_prompt(history(), None)
        tool_ids = renderer.render_tool_response("a long tool text " * 4)
        reply = Message(role="assistant", content="Lima is the capital of Peru.")
        example = messages_example(renderer.tokenizer, [*history(), reply], [], "lead")
    finally:
        hf_logging.disable_propagation()
    assert len(ids) > 8 and len(tool_ids) > 8 and len(example.input_ids) > 8
    assert "indexing errors" not in caplog.text
