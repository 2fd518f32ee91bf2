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

A deep question is its template's sentence or another sentence of its shape (`DEEP_PHRASINGS`),
inside a casual frame ("Quick question: …").

`training_wordings(tasks, wordings)` words a list of tasks for demonstrations (`wideseek world
oracle --wordings`): "template" leaves them; "people" asks every task in people's words (half
with the columns stated); "mixed" keeps a third as templates and splits the rest between the
two people's forms. Each task's draw is seeded by its id alone, so the same task gets the same
wording in any order, subset or resumed run.

The subject and the formatting notes are read from the template question with
`reworded.wide_slots`; the template stays in `metadata["template_question"]` so the oracle
plans from it. None of these phrasings is one of `reworded.py`'s held-out wordings: evaluation
on those stays a test of wordings never trained on. This module knows texts and tasks only.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Sequence
from typing import Literal

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
# Other sentences for each deep question shape ({0}, {1}: the shape's slots, as in
# reworded.DEEP_WORDINGS, whose held-out sentences none of these repeats); a person's deep
# question is the template's sentence or one of these, inside one of DEEP_FRAMES.
DEEP_PHRASINGS = {
    "country_capital": (
        "What city serves as the capital of {0}?",
        "{0}'s capital: which city is it?",
    ),
    "country_iso3": (
        "Look up the alpha-3 country code (ISO 3166-1) for {0}.",
        "Which ISO 3166-1 alpha-3 code belongs to {0}?",
    ),
    "country_currency_code": (
        "What currency code (ISO 4217) does {0} use?",
        "Find the ISO 4217 code for the currency of {0}.",
    ),
    "country_calling_code_zh": ("{0}的国际长途区号是多少？", "请问拨打{0}的电话要加哪个国际区号？"),
    "country_currency_zh": ("在{0}，人们用的法定货币是哪种？", "{0}流通的法定货币名称是什么？"),
    "city_population": (
        "What is the number of residents of {0} ({1})?",
        "Look up the population of the city {0} in {1}.",
    ),
    "airport_icao": (
        "Find the ICAO code for the airport whose IATA code is {0}.",
        "IATA {0}: what is that airport's ICAO code?",
    ),
    "element_symbol": (
        "Give the chemical symbol for {0}.",
        "How is {0} written as a chemical symbol?",
    ),
    "state_statehood": (
        "When did {0} join the Union? Give the year.",
        "{0} became a state in which year?",
    ),
    "capital_population": (
        "What is the population of the capital of {0}?",
        "How many residents does the capital city of {0} have?",
    ),
    "airport_country_capital": (
        "Find the capital of the country where airport {0} (IATA) is.",
        "The airport with IATA code {0} lies in some country: what is that country's capital?",
    ),
    "airport_country_currency": (
        "What ISO 4217 currency code is used in the country of the airport {0} ({1})?",
        "The airport {0} ({1}): which currency code does its country use?",
    ),
    "city_country_calling_code": (
        "Which international calling code does the country of {0} (population {1}) use?",
        "{0} has {1} inhabitants. What calling code does its country have?",
    ),
    "airport_country_calling_code_zh": (
        "请查一下机场 {0}（IATA代码）所在国家的国际电话区号。",
        "IATA代码 {0} 对应的机场在哪个国家？那个国家的国际区号是多少？",
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
        sentence = rng.choice(_deep_sentences(task))
        question = rng.choice(DEEP_FRAMES[lang]).format(question=sentence)
    metadata = {**(task.metadata or {}), TEMPLATE_QUESTION: task.question}
    return task.model_copy(update={"question": question, "metadata": metadata})


def _deep_sentences(task: Task) -> list[str]:
    """The template's sentence and, for a world task (its shape and slots recorded), the
    shape's other sentences."""
    meta = task.metadata or {}
    phrasings, slots = DEEP_PHRASINGS.get(str(meta.get("shape", ""))), meta.get("slots")
    own = [task.question.strip()]
    if not phrasings or not isinstance(slots, list):
        return own
    return own + [phrasing.format(*slots) for phrasing in phrasings]


Wordings = Literal["template", "people", "mixed"]
WORDINGS: tuple[Wordings, ...] = ("template", "people", "mixed")


def training_wordings(tasks: Sequence[Task], wordings: Wordings) -> list[Task]:
    """`tasks` worded for demonstrations (see the module docstring)."""
    if wordings not in WORDINGS:
        raise ValueError(f"wordings: {wordings!r} is not one of {', '.join(WORDINGS)}")
    if wordings == "template":
        return list(tasks)
    out = []
    for task in tasks:
        rng = random.Random(zlib.crc32(task.id.encode()))
        form = rng.randrange(3) if wordings == "mixed" else 1 + rng.randrange(2)
        out.append(task if form == 0 else people_wording(task, rng, with_columns=form == 1))
    return out
