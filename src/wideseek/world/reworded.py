"""Held-out wordings: the world's tasks asked in words no training example uses.

The world's questions come from templates (wide_tasks.py's openers and table instructions,
deep_tasks.py's question shapes), and a model fine-tuned on them may answer only that wording.
`reword(task)` returns the task with its question written again from the templates below, which
nothing in the world or its demonstrations uses: the same subject, columns, formatting notes
and gold, other sentences. The slots (a subject, an entity's name, a code) are read back out of
the original question by matching it against the template that made it, so rewording needs
no access to the world's facts. A question no template matches is a `RewordError`. The template
wording stays in `metadata["template_question"]`: the oracle plans from it (it may know the
tasks it plays; a model sees only the new wording).

Evaluation only: `wideseek eval world --reworded` (and the shipped model's card) report a model
on these beside the template wording. This module knows texts and tasks; not agents or models.
"""

from __future__ import annotations

import re
import string
from functools import cache

from wideseek.errors import DataError
from wideseek.types import Task
from wideseek.world.columns import norm_column
from wideseek.world.deep_tasks import SHAPES
from wideseek.world.wide_tasks import EN_OPENERS, ZH_OPENERS


class RewordError(DataError):
    """A question that none of the world's templates produced."""


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
    template = next((s.question for s in SHAPES if s.name == shape), None)
    if wording is None or template is None:
        raise RewordError(f"{task.id}: no held-out wording for question shape {shape!r}")
    slots = _match(template, task.question.strip())
    if slots is None:
        raise RewordError(f"{task.id}: question does not match its shape {shape!r}")
    return wording.format(*slots)


def wide_slots(task: Task) -> tuple[str, list[str], list[str]]:
    """A template wide question's subject, column titles and formatting notes."""
    lines = task.question.strip().split("\n")
    zh = task.language == "zh"
    subject = None
    for opener in ZH_OPENERS if zh else EN_OPENERS:
        slots = _match(opener, lines[0], case_insensitive=True)
        if slots is not None:
            subject = slots[0]
            break
    # the template's table instruction ends "...:" and the titles follow on the next line
    at = next((i + 1 for i, line in enumerate(lines) if line.endswith((":", "："))), len(lines))
    header = lines[at].split("、" if zh else ", ") if at < len(lines) else []
    required = (task.evaluation or {}).get("required") or []
    if subject is None or not required:
        raise RewordError(f"{task.id}: the wide question's opener is not one of the world's")
    if [norm_column(t) for t in header] != required:
        raise RewordError(f"{task.id}: the wide question's columns are not its required ones")
    notes = [line for line in lines[at + 1 :] if _is_note(line, zh)]
    return subject, header, notes


def _reword_wide(task: Task) -> str:
    subject, _header, notes = wide_slots(task)
    zh = task.language == "zh"
    required = (task.evaluation or {}).get("required") or []
    opener, table, close = WIDE_WORDINGS["zh" if zh else "en"]
    columns = ("、" if zh else ", ").join(required)
    return "\n".join([opener.format(subject=subject), table.format(columns=columns), *notes, close])


def _is_note(line: str, zh: bool) -> bool:
    """A formatting note (numbers without units, names in Chinese): kept, it is a requirement."""
    if zh:
        return line.endswith("不带单位。") or line == "国家名称请使用中文。"
    return line.startswith(("Give ", "For ")) and ("units" in line)


def _match(template: str, text: str, case_insensitive: bool = False) -> list[str] | None:
    """The values of `template`'s fields in `text` (in the template's order), or None."""
    found = _pattern(template, case_insensitive).fullmatch(text)
    return list(found.groups()) if found else None


@cache
def _pattern(template: str, case_insensitive: bool) -> re.Pattern[str]:
    parts = []
    for literal, field, _spec, _conv in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if field is not None:
            parts.append("(.+?)")
    return re.compile("".join(parts), re.IGNORECASE if case_insensitive else 0)
