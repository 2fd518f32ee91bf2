"""The texts the small model learns its tokens and its language from.

`corpus_texts(world)`: every page of the world's corpus as its title and text. `task_texts`:
the questions of a split's wide and deep tasks (what prompts are made of). `trace_texts`:
what agents wrote and read in trajectory files, message by message, tool schemas included.
The tokenizer trains on all three; the LM warm-up reads the pages.

This module reads files and yields strings; it knows no tokenizer and no model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from wideseek.tools.local_corpus import read_corpus
from wideseek.types import read_trajectories
from wideseek.world.store import World
from wideseek.world.suites import deep_tasks, wide_tasks


def corpus_texts(world: World) -> list[str]:
    pages, _ = read_corpus(world.corpus_path)
    return [f"{page.title}\n{page.text}" for page in pages]


def task_texts(world: World, split: str = "train") -> Iterator[str]:
    for task in (*wide_tasks(world, split), *deep_tasks(world, split)):
        yield task.question


def trace_texts(paths: Iterable[str | Path]) -> Iterator[str]:
    for path in paths:
        for traj in read_trajectories(path):
            for agent in traj.agents:
                yield from (json.dumps(schema) for schema in agent.tool_schemas)
                yield from (m.content for m in agent.messages if m.content)
