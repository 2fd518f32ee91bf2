from wideseek.llm.toolcall import format_tool_call, parse_tool_calls, split_thinking


def test_parses_several_calls_after_thinking():
    text = (
        "<think>plan: two searches</think>\n"
        + format_tool_call("search", {"query": "capital of Chile"})
        + "\n"
        + format_tool_call("search", {"query": "capital of Peru", "count": 2})
    )
    parsed = parse_tool_calls(text)
    assert parsed.thinking == "plan: two searches"
    assert [c.arguments["query"] for c in parsed.calls] == ["capital of Chile", "capital of Peru"]
    assert parsed.errors == []
    assert parsed.content == ""


def test_malformed_blocks_become_errors_not_exceptions():
    text = (
        '<tool_call>{"name": "search", "arguments": {"query": "a"</tool_call>'
        '<tool_call>["not", "an", "object"]</tool_call>'
        '<tool_call>{"name": "access", "arguments": 3}</tool_call>'
        '<tool_call>{"name": "search", "arguments": {"query": "b"}}'
    )
    parsed = parse_tool_calls(text)
    assert parsed.calls == []
    assert len(parsed.errors) == 4
    assert "invalid JSON" in parsed.errors[0]
    assert "missing </tool_call>" in parsed.errors[3]


def test_double_encoded_arguments_and_plain_answer():
    parsed = parse_tool_calls('<tool_call>{"name": "x", "arguments": "{\\"a\\": 1}"}</tool_call>')
    assert parsed.calls[0].arguments == {"a": 1}
    assert split_thinking("no think here") == ("", "no think here")
    assert parse_tool_calls("</think>| a |\n|---|").content == "| a |\n|---|"
