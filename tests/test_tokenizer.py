from pathlib import Path

import pytest
from transformers import AutoTokenizer

from tiny_lm import CORPUS
from wideseek.llm.toolcall import parse_tool_calls
from wideseek.train.tokenizer import MARKUP_TOKENS, SPECIAL_TOKENS, train_tokenizer


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tok") / "tokenizer"
    train_tokenizer(CORPUS * 20, vocab_size=400, out_dir=out)
    return out


def test_loads_with_auto_tokenizer_and_keeps_special_tokens_whole(tok_dir):
    tok = AutoTokenizer.from_pretrained(tok_dir)
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    for special in SPECIAL_TOKENS:
        assert len(tok.encode(special)) == 1, special
    text = 'é ü 中文 "Lima" <tool_call>{"a": 1}</tool_call>\n\t 12345'
    assert tok.decode(tok.encode(text)) == text  # byte level: any text round-trips
    # Markup survives skip_special_tokens (the tool-call parser needs it); control tokens do not.
    ids = tok.encode("<think>x</think><tool_call>y</tool_call><|im_end|>")
    assert tok.decode(ids, skip_special_tokens=True) == "".join(
        ["<think>x</think>", "<tool_call>y</tool_call>"]
    )
    assert set(MARKUP_TOKENS) <= set(tok.get_vocab())


def test_same_value_gets_same_tokens_in_page_json_and_table(tok_dir):
    tok = AutoTokenizer.from_pretrained(tok_dir)

    def pieces(text: str) -> list[str]:
        return [tok.decode([i]) for i in tok.encode(text)]

    # Punctuation never glues onto a word, so a quoted name is the bare word's tokens.
    assert pieces('"Lima"')[1:-1] == pieces("Lima")
    assert pieces(" Lima,") == [*pieces(" Lima"), ","]
    # Digits come in groups of at most three and never merge with their neighbours.
    digits = [p.strip() for p in pieces(" 10,092,000 and 10092000") if p.strip().isdigit()]
    assert digits and all(len(d) <= 3 for d in digits)
    assert pieces("x10092000")[0] == "x"


def test_digit_group_one_splits_every_digit(tmp_path):
    tok = train_tokenizer(CORPUS * 20, vocab_size=400, out_dir=tmp_path / "t", digit_group=1)
    assert [tok.decode([i]) for i in tok.encode("2023")] == ["2", "0", "2", "3"]


def test_chat_template_renders_qwen3_format(tok_dir):
    tok = AutoTokenizer.from_pretrained(tok_dir)
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "capital of Peru?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"type": "function", "function": {"name": "search", "arguments": {"query": "Peru"}}}
            ],
        },
        {"role": "tool", "content": "Lima is the capital."},
        {"role": "tool", "content": "Peru: Lima."},
    ]
    tools = [{"type": "function", "function": {"name": "search", "parameters": {}}}]
    text = tok.apply_chat_template(
        messages, tools=tools, add_generation_prompt=True, tokenize=False
    )
    assert text.startswith("<|im_start|>system\nBe brief.\n\n")
    assert '<tools>\n{"type": "function"' in text
    assistant = text.split("<|im_start|>assistant\n")[1].split("<|im_end|>")[0]
    assert [c.arguments for c in parse_tool_calls(assistant).calls] == [{"query": "Peru"}]
    assert text.endswith(
        "<|im_start|>user\n<tool_response>\nLima is the capital.\n</tool_response>\n"
        "<tool_response>\nPeru: Lima.\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
    )
    no_think = tok.apply_chat_template(
        messages[:2], add_generation_prompt=True, tokenize=False, enable_thinking=False
    )
    assert no_think.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_retraining_replaces_the_directory_atomically(tmp_path):
    out = tmp_path / "tok"
    first = train_tokenizer(["alpha beta"] * 10, vocab_size=300, out_dir=out)
    second = train_tokenizer(CORPUS * 5, vocab_size=300, out_dir=out)
    assert len(first) != len(second)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tok"]  # no temp or .old leftovers
    assert AutoTokenizer.from_pretrained(out).get_vocab() == second.get_vocab()
