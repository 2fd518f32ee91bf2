"""Trajectories -> SFT examples: loss on exactly the assistant tokens, prefix-consistent renders."""

import asyncio

import pytest
from transformers import AutoTokenizer

from scripted_engine import ScriptedEngine
from test_orchestrator import TASK, responder, tools_for
from tiny_lm import make_tiny_lm
from wideseek.agents.orchestrator import Orchestrator
from wideseek.config import AgentConfig
from wideseek.train.copy_probe import field_spans
from wideseek.train.sft_data import (
    IGNORE,
    TemplateError,
    agent_example,
    trajectory_examples,
)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return AutoTokenizer.from_pretrained(make_tiny_lm(tmp_path_factory.mktemp("lm")))


@pytest.fixture(scope="module")
def trajectory():
    return asyncio.run(Orchestrator(ScriptedEngine(responder=responder), tools_for).run(TASK))


def runs(labels):
    out, start = [], None
    for i, label in enumerate([*labels, IGNORE]):
        if label != IGNORE and start is None:
            start = i
        elif label == IGNORE and start is not None:
            out.append((start, i))
            start = None
    return out


def render(tokenizer, messages, tools, gen):
    return list(
        tokenizer.apply_chat_template(
            [m.to_openai() for m in messages],
            tools=tools or None,
            add_generation_prompt=gen,
            tokenize=True,
            return_dict=False,
        )
    )


def test_labels_cover_exactly_each_assistant_turn_and_its_end_token(tokenizer, trajectory):
    for agent in trajectory.agents:
        ex = agent_example(tokenizer, agent, trajectory.task.id)
        assistant = [(i, m) for i, m in enumerate(agent.messages) if m.role == "assistant"]
        spans = runs(ex.labels)
        assert len(spans) == len(assistant) >= 1
        for (start, end), (i, message) in zip(spans, assistant, strict=True):
            assert ex.labels[start:end] == ex.input_ids[start:end]
            # every token of the turn, thinking and tool calls included, then <|im_end|>
            assert tokenizer.decode(ex.input_ids[start:end]) == message.content + "<|im_end|>"
            # what comes before is exactly the rendered prompt of that turn
            prompt = render(tokenizer, agent.messages[:i], agent.tool_schemas, gen=True)
            assert ex.input_ids[:start] == prompt
        # the whole example is the whole conversation, rendered once
        assert ex.input_ids == render(tokenizer, agent.messages, agent.tool_schemas, gen=False)


def test_trajectory_examples_skip_failed_agents_and_long_ones(tokenizer, trajectory):
    examples = list(trajectory_examples(tokenizer, [trajectory], max_length=100_000))
    assert [e.role for e in examples] == ["lead", "subagent", "subagent"]
    broken = trajectory.model_copy(deep=True)
    broken.agents[1].failures.append("turn_limit")
    assert len(list(trajectory_examples(tokenizer, [broken], max_length=100_000))) == 2
    shortest = min(len(e.input_ids) for e in examples)
    assert list(trajectory_examples(tokenizer, [trajectory], max_length=shortest - 1)) == []
    crashed = trajectory.model_copy(update={"error": "boom"})
    assert list(trajectory_examples(tokenizer, [crashed], max_length=100_000)) == []


def test_template_that_rewrites_history_is_a_clear_error(tmp_path, trajectory):
    tok = AutoTokenizer.from_pretrained(make_tiny_lm(tmp_path))
    # counts the messages up front: every prefix renders differently
    tok.chat_template = "{{ messages | length }}" + tok.chat_template
    with pytest.raises(TemplateError, match="prefixes"):
        agent_example(tok, trajectory.lead, "t1")


def test_field_spans_find_call_values_table_cells_and_boxed():
    text = (
        '<think>x</think><tool_call>\n{"name": "search", "arguments": {"query": "Lima"}}\n'
        "</tool_call>\n| City | Pop |\n|---|---|\n| Lima | 10,092,000 |\nso \\boxed{Peru}"
    )
    assert [text[a:b] for a, b in field_spans(text)] == ["Lima", "Lima", "10,092,000", "Peru"]
    assert field_spans("<tool_call>{broken</tool_call>") == []
    report = "Found 2:\n- Syria\n- Chad\nSyria — Currency: Syrian Pound; Code: SYP\n"
    report += "Chad — page not found"
    expected = ["Syria", "Chad", "Syria", "Syrian Pound", "SYP", "Chad"]
    assert [report[a:b] for a, b in field_spans(report)] == expected


async def test_single_mode_trajectory_gives_one_example(tokenizer):
    engine = ScriptedEngine({"single": ["```markdown\n| a |\n|---|\n| 1 |\n```"]})
    traj = await Orchestrator(engine, tools_for, AgentConfig(mode="single")).run(TASK)
    examples = list(trajectory_examples(tokenizer, [traj], max_length=100_000))
    assert [e.role for e in examples] == ["single"]
