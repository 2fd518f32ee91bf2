"""Training questions in people's words: the world's tasks asked the way a person would.

Every template question names its columns and the answer format in WideSearch's words; people
write "List the countries that share a land border with France with their capital and
population." `people_wording(task, rng)` returns the task asked in one of several such
phrasings (list / which / give me a table of / compare / can you find), drawn with `rng`:

- `with_columns=True`: the person's sentence, then the table line and the format line that
  `wideseek ask` adds to a question (runtime/table_request.py), then the template's formatting
  notes — the exact shape a model sees when a person asks through `ask`;
- `with_columns=False`: the person's sentence and the notes only; the model must write the
  table's columns itself from the attribute words (the gold keeps its titles).

Deep questions keep their sentence inside a casual frame ("Quick question: …").

The subject and the formatting notes are read from the template question with
`reworded.wide_slots`; the template stays in `metadata["template_question"]` so the oracle
plans from it. None of these phrasings is one of `reworded.py`'s held-out wordings: evaluation
on those stays a test of wordings never trained on. This module knows texts and tasks only.
"""

from __future__ import annotations

import random

from wideseek.types import Task
from wideseek.world.reworded import TEMPLATE_QUESTION, wide_slots
from wideseek.world.wide_tasks import closing_line, table_instruction

WIDE_PHRASINGS = {
    "en": (
        "List {subject} with their {attributes}.",
        "Which are {subject}? I need their {attributes}.",
        "Give me a table of {subject} with their {attributes}.",
        "Compare {subject}: {attributes}.",
        "Can you find {subject}, along with their {attributes}?",
    ),
    "zh": (
        "列出{subject}，以及它们的{attributes}。",
        "{subject}有哪些？请给出它们的{attributes}。",
        "帮我做一张表：{subject}，包括{attributes}。",
    ),
}
DEEP_FRAMES = {
    "en": ("Quick question: {question}", "{question} Just the answer, please.", "{question}"),
    "zh": ("问一下：{question}", "{question}直接告诉我答案就行。", "{question}"),
}


def _spoken(title: str) -> str:
    """A column title as a person writes it in a sentence: 'Capital Population' → 'capital
    population'; acronyms and codes stay as they are ('IATA Code' → 'IATA code')."""
    return " ".join(w if w.isupper() or not w[:1].isupper() else w.lower() for w in title.split())


def _joined(items: list[str], zh: bool) -> str:
    if zh:
        return "、".join(items[:-1]) + "和" + items[-1] if len(items) > 1 else items[0]
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else items[0]


def people_wording(task: Task, rng: random.Random, with_columns: bool = True) -> Task:
    """`task` asked in a person's words (see the module docstring)."""
    zh = task.language == "zh"
    lang = "zh" if zh else "en"
    if task.kind == "wide":
        subject, header, notes = wide_slots(task)
        attributes = [t if zh else _spoken(t) for t in header[1:]] or [header[0]]
        sentence = rng.choice(WIDE_PHRASINGS[lang]).format(
            subject=subject, attributes=_joined(attributes, zh)
        )
        sentence = sentence[0].upper() + sentence[1:]
        lines = [sentence]
        if with_columns:
            lines += [table_instruction(lang, header), *notes, closing_line(lang)]
        else:
            lines += notes
        question = "\n".join(lines)
    else:
        question = rng.choice(DEEP_FRAMES[lang]).format(question=task.question.strip())
    metadata = {**(task.metadata or {}), TEMPLATE_QUESTION: task.question}
    return task.model_copy(update={"question": question, "metadata": metadata})
