"""Copying curricula: random spans shown twice, then "read this page, answer with the value".

Small models trained from scratch learn to copy a value from their context last, and agent
demonstrations are long (a subagent's context is ~1,400 tokens for ~150 target tokens), so
copying is rare per token of compute. These examples are short (~150 tokens) and each one is
a copy: the pages that hold a deep task's answer, shown the way the `access` tool shows them,
the question, and the answer in `\\boxed{}`, with loss on the answer turn only. They come
from the world's train-split deep tasks whose answer appears verbatim on the pages.

`answer_examples` gives the same kind of example from the oracle's trajectories: each agent's
final answer (a subagent's report, the lead's table or boxed answer) after only what it read
that holds the values — the pages it opened, or the reports it got — and its task. These carry
the wide tasks' copies (many values per answer) at a fraction of a whole agent's tokens.

`induction_examples` can come first: pure copying of a repeated random span, meant to form
the attention pattern that copying needs before anything else is asked of the model.

This module knows the world's task files and the tool output format, not training.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from wideseek.tools.base import Page
from wideseek.tools.local_corpus import read_corpus
from wideseek.tools.search_tools import format_page
from wideseek.train.sft_data import IGNORE, SFTExample, messages_example
from wideseek.types import Message, Trajectory
from wideseek.world.store import World
from wideseek.world.suites import deep_tasks


def copy_examples(
    tokenizer: Any, world: World, split: str = "train", page_chars: int = 2000
) -> Iterator[SFTExample]:
    pages: dict[str, Page] = {p.url: p for p in read_corpus(world.corpus_path)[0]}
    for task in deep_tasks(world, split):
        shown = [pages[url] for url in task.metadata.get("pages", []) if url in pages]
        answer = (task.golden_answers or [""])[0]
        if not shown or not answer or not any(answer in p.text for p in shown):
            continue  # nothing to copy from
        context = "\n\n".join(format_page(p.url, p, page_chars) for p in shown)
        messages = [
            Message(role="user", content=f"{context}\n\nQuestion: {task.question}"),
            Message(role="assistant", content=f"\\boxed{{{answer}}}"),
        ]
        yield messages_example(tokenizer, messages, [], role="copy", task_id=task.id)


def answer_examples(
    tokenizer: Any, trajectories: Iterable[Trajectory], roles: Sequence[str] = ("lead", "subagent")
) -> Iterator[SFTExample]:
    for traj in trajectories:
        if traj.error is not None:
            continue
        for agent in traj.agents:
            final = agent.messages[-1] if agent.messages else None
            if agent.role not in roles or not agent.ok or final is None or final.tool_calls:
                continue
            if final.role != "assistant" or not final.content.strip():
                continue
            task = next((m.content for m in agent.messages if m.role == "user"), "")
            # search listings only point to pages; the values are on the pages opened
            read = [m.content for m in agent.messages if m.role == "tool" and m.name != "search"]
            if not read:
                continue
            messages = [
                Message(role="user", content="\n\n".join([*read, task])),
                Message(role="assistant", content=final.content),
            ]
            yield messages_example(tokenizer, messages, [], role=agent.role, task_id=traj.task.id)


def token_pool(tokenizer: Any, texts: Sequence[str], max_tokens: int = 1_000_000) -> list[int]:
    """The tokens of the first texts, up to `max_tokens`: a sample of the corpus's tokens."""
    pool: list[int] = []
    for text in texts:
        pool += tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(pool) >= max_tokens:
            break
    return pool[:max_tokens]


def induction_examples(
    pool: Sequence[int], n: int, span: int = 48, seed: int = 0
) -> Iterator[SFTExample]:
    """`n` sequences of `span` random tokens shown twice, with loss on the second showing.

    Predicting a repeat needs nothing but "find where the current token was before and copy
    what followed it" (an induction head), the mechanism every copy from a page relies on. A
    model trained from scratch on agent traces gets that signal rarely and late; these
    examples give it on every labelled token. Tokens are drawn from `pool` (e.g. `token_pool`, the
    corpus's tokens, so common tokens are common here too); the first token of the repeat
    cannot be predicted and carries no loss.
    """
    rng = random.Random(seed)
    for i in range(n):
        seq = rng.choices(pool, k=span)
        ids = seq + seq
        labels = [IGNORE] * (span + 1) + seq[1:]
        yield SFTExample(input_ids=ids, labels=labels, role="induction", task_id=str(i))
