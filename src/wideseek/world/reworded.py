"""Held-out wordings: the world's tasks asked in words no training example uses.

The world's questions come from templates (wide_tasks.py's openers and table instructions,
deep_tasks.py's question shapes), and a model fine-tuned on them may answer only that wording.
`reword(task)` returns the task with its question written again from the templates below, which
nothing in the world or its demonstrations uses: the same subject, columns, formatting notes
and gold, other sentences. The slots (a subject, an entity's name, a code) are the ones the
world recorded in the task's metadata when it wrote the question (`subject`, `column_sources`,
`notes` for wide tasks; `slots` for deep ones), so rewording needs no access to the world's
facts and never parses a question. A task without them is a `RewordError`. The template
wording stays in `metadata["template_question"]`: the oracle plans from it (it may know the
tasks it plays; a model sees only the new wording).

Evaluation only: `wideseek eval world --reworded` (and the shipped model's card) report a model
on these beside the template wording. This module knows texts and tasks; not agents or models.
"""

from __future__ import annotations

from wideseek.errors import DataError
from wideseek.types import Task


class RewordError(DataError):
    """A task the world did not make (its question's slots are not recorded)."""


TEMPLATE_QUESTION = "template_question"

# One held-out sentence per deep shape; {0}, {1}, ... are the shape template's fields in order.
DEEP_WORDINGS = {
    "country_capital": "Name the capital city of {0}.",
    "country_iso3": "{0}: which three-letter ISO 3166-1 alpha-3 code does it have?",
    "country_currency_code": "Give the three-letter ISO 4217 code of the money {0} uses.",
    "country_calling_code_zh": "给{0}打国际电话，要拨哪个国家区号？",
    "country_currency_zh": "{0}的官方货币是什么？",
    "city_population": "How many inhabitants does {0} ({1}) have?",
    "airport_icao": "An airport has the IATA code {0}. What is its ICAO code?",
    "element_symbol": "Which symbol stands for the element {0}?",
    "state_statehood": "What year did {0} become a US state?",
    "capital_population": "Tell me the population of {0}'s capital.",
    "airport_country_capital": "Which city is the capital of the country that airport {0} "
    "(IATA) is in?",
    "airport_country_currency": "{0} ({1}) is an airport. Which ISO currency code does its "
    "country use?",
    "city_country_calling_code": "{0} is a city of {1} people. What is the international "
    "dialling code of its country?",
    "airport_country_calling_code_zh": "机场代码 {0}（IATA）所在国家的国际电话区号是什么？",
}

# (opener, table instruction, close) per language; the original's notes are kept between.
WIDE_WORDINGS = {
    "en": (
        "My team needs a table about {subject}.",
        "Make it one Markdown table with exactly these column headers, in order: {columns}.",
        "Reply with the table only, in a ```markdown code block, and fill every cell.",
    ),
    "zh": (
        "我们需要一张关于{subject}的表格。",
        "请只用一个Markdown表格作答，表头依次使用：{columns}。",
        "只回复这张表（放在```markdown代码块里），每个单元格都要填写。",
    ),
}


def reword(task: Task) -> Task:
    """`task` with a held-out wording of its question (see the module docstring)."""
    question = _reword_wide(task) if task.kind == "wide" else _reword_deep(task)
    metadata = {**(task.metadata or {}), TEMPLATE_QUESTION: task.question}
    return task.model_copy(update={"question": question, "metadata": metadata})


def template_view(task: Task) -> Task:
    """The task as its template worded it (itself, unless reworded)."""
    original = (task.metadata or {}).get(TEMPLATE_QUESTION)
    return task.model_copy(update={"question": original}) if original else task


def _reword_deep(task: Task) -> str:
    shape = str((task.metadata or {}).get("shape", ""))
    wording = DEEP_WORDINGS.get(shape)
    if wording is None:
        raise RewordError(f"{task.id}: no held-out wording for question shape {shape!r}")
    slots = (task.metadata or {}).get("slots")
    if not isinstance(slots, list):
        raise RewordError(f"{task.id}: not a world deep task (no recorded slots)")
    return wording.format(*slots)


def wide_slots(task: Task) -> tuple[str, list[str], list[str]]:
    """A world wide task's subject, column titles and formatting notes, as recorded when the
    world made its question."""
    meta = task.metadata or {}
    subject, titles, notes = meta.get("subject"), meta.get("column_sources"), meta.get("notes")
    if not isinstance(subject, str) or not titles or not isinstance(notes, list):
        raise RewordError(f"{task.id}: not a world wide task (no recorded subject and columns)")
    return subject, list(titles), notes


def _reword_wide(task: Task) -> str:
    subject, _header, notes = wide_slots(task)
    zh = task.language == "zh"
    required = (task.evaluation or {}).get("required") or []
    opener, table, close = WIDE_WORDINGS["zh" if zh else "en"]
    columns = ("、" if zh else ", ").join(required)
    return "\n".join([opener.format(subject=subject), table.format(columns=columns), *notes, close])
