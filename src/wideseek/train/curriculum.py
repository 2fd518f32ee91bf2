"""A copying curriculum: short "read this page, answer with the exact value" examples.

Small models trained from scratch learn to copy a value from their context last, and agent
demonstrations are long (a subagent's context is ~1,400 tokens for ~150 target tokens), so
copying is rare per token of compute. These examples are short (~150 tokens) and each one is
a copy: the pages that hold a deep task's answer, shown the way the `access` tool shows them,
the question, and the answer in `\\boxed{}`, with loss on the answer turn only. They come
from the world's train-split deep tasks whose answer appears verbatim on the pages.

This module knows the world's task files and the tool output format, not training.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from wideseek.tools.base import Page
from wideseek.tools.local_corpus import read_corpus
from wideseek.tools.search_tools import format_page
from wideseek.train.sft_data import SFTExample, messages_example
from wideseek.types import Message
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
