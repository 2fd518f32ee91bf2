"""Trajectories → supervised examples (token ids + labels) for train/sft.py.

Each agent of a trajectory (lead and every subagent, or the single agent) becomes one example:
its messages rendered with the tokenizer's chat template and the tools it was given, with
labels on the assistant tokens only (its thinking, tool calls, final answer and the
end-of-turn token that stops generation) and IGNORE on everything it read (system prompt,
task, tool results, and the newline the template writes after an end-of-turn token, which
the model never generates).

Assistant spans are found by rendering prefixes: the tokens of message i are
render(messages[:i+1]) minus render(messages[:i], add_generation_prompt=True). That needs a
template whose renderings of a conversation's prefixes are prefixes of each other — true of the
project's template, which keeps earlier thinking; a template that is not gets a TemplateError.

This module knows tokenizers and trajectories, not models or training loops.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from wideseek.errors import WideseekError
from wideseek.llm.chat_template import END_OF_TURN
from wideseek.llm.renderer import QUIET
from wideseek.types import AgentRun, Message, Trajectory

IGNORE = -100


@dataclass
class SFTExample:
    input_ids: list[int]
    labels: list[int]  # the target of position t is input_ids[t]; IGNORE where no loss
    role: str
    task_id: str

    @property
    def n_target_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


class TemplateError(WideseekError, ValueError):
    """The chat template does not render conversation prefixes as token prefixes."""


def _render(tokenizer: Any, messages: list[Message], tools: list[dict], gen: bool) -> list[int]:
    return list(
        tokenizer.apply_chat_template(
            [m.to_openai() for m in messages],
            tools=tools or None,
            add_generation_prompt=gen,
            tokenize=True,
            return_dict=False,
            tokenizer_kwargs=QUIET,
        )
    )


def _split_turn_end(target: list[int], end_id: int | None) -> tuple[list[int], list[int]]:
    """(what the model generates, up to its end-of-turn token; the template's tail after it)."""
    if end_id is None or end_id not in target:
        return target, []
    cut = len(target) - target[::-1].index(end_id)
    return target[:cut], target[cut:]


def messages_example(
    tokenizer: Any,
    messages: list[Message],
    tools: list[dict[str, Any]],
    role: str,
    task_id: str = "",
) -> SFTExample:
    """One conversation as an example: loss on its assistant messages (see module docstring)."""
    end_id = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    ids: list[int] = []
    labels: list[int] = []
    for i, message in enumerate(messages):
        if message.role != "assistant":
            continue
        prefix = _render(tokenizer, messages[:i], tools, gen=True)
        upto = _render(tokenizer, messages[: i + 1], tools, gen=False)
        if upto[: len(prefix)] != prefix or prefix[: len(ids)] != ids:
            raise TemplateError(
                f"task {task_id} ({role}): the chat template does not render prefixes of a "
                "conversation as token prefixes; assistant spans cannot be found"
            )
        context = prefix[len(ids) :]
        generated, tail = _split_turn_end(upto[len(prefix) :], end_id)
        ids += context + generated + tail
        labels += [IGNORE] * len(context) + generated + [IGNORE] * len(tail)
    return SFTExample(input_ids=ids, labels=labels, role=role, task_id=task_id)


def agent_example(tokenizer: Any, agent: AgentRun, task_id: str = "") -> SFTExample:
    return messages_example(tokenizer, agent.messages, agent.tool_schemas, agent.role, task_id)


def trajectory_examples(
    tokenizer: Any,
    trajectories: Iterable[Trajectory],
    max_length: int,
    roles: tuple[str, ...] = ("lead", "subagent", "single"),
) -> Iterator[SFTExample]:
    """Examples of every agent that ended well; longer than max_length ones are skipped."""
    for traj in trajectories:
        if traj.error is not None:
            continue
        for agent in traj.agents:
            if agent.role not in roles or not agent.ok or not agent.turns:
                continue
            example = agent_example(tokenizer, agent, traj.task.id)
            if 0 < len(example.input_ids) <= max_length and example.n_target_tokens:
                yield example
