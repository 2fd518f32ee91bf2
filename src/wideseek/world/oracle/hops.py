"""Plan a deep (QA) question as a chain of lookups: which entity, which fact, then the next.

Contract. `plan_hops(task)` reads the task's shape (planning metadata) and the question text and
returns the first entity's reference and the hops: per hop the entity kind, the language of the
page to read and the column title of the fact to find. `next_ref(hop, value, ref)` names the next
hop's entity from the fact just found (a country's capital becomes "Mbabane (Eswatini)").
The start entity is read out of the question with the shape's own template
(`world/deep_tasks.SHAPES`), never from the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from wideseek.types import Task
from wideseek.world.deep_tasks import SHAPES, Shape

_FIELD = re.compile(r"\{([^{}]+)\}")
_GROUPS = {
    "e.name": "name",
    "e.name_zh": "name",
    "a[iata]": "iata",
    "country.name": "country",
    "a[population]:,": "population",
}
# The link attribute of a hop -> (kind of the next entity, column title of the link).
_LINKS = {"capital_city": ("city", "Capital"), "country": ("country", "Country")}
# (kind, language, answer attribute) -> column title the subagent is asked for.
_ANSWERS = {
    ("country", "en", "capital"): "Capital",
    ("country", "en", "iso3"): "ISO Alpha-3 Code",
    ("country", "en", "currency_code"): "Currency Code",
    ("country", "en", "calling_code"): "Calling Code",
    ("country", "zh", "calling_code"): "国际电话区号",
    ("country", "zh", "currency_zh"): "货币",
    ("city", "en", "population"): "Population",
    ("airport", "en", "icao"): "ICAO Code",
    ("element", "en", "symbol"): "Symbol",
    ("us_state", "en", "statehood_year"): "Statehood Year",
}


@dataclass(frozen=True)
class Hop:
    kind: str
    lang: str
    title: str


@dataclass(frozen=True)
class HopPlan:
    first_ref: str
    hops: tuple[Hop, ...]


def _question_pattern(shape: Shape) -> re.Pattern[str]:
    parts = _FIELD.split(shape.question)
    regex = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{_GROUPS[part]}>.+?)"
        for i, part in enumerate(parts)
    )
    return re.compile(regex)


_SHAPES = {s.name: (s, _question_pattern(s)) for s in SHAPES}


def _first_ref(fields: dict[str, str]) -> str:
    name = fields.get("name", "")
    if "iata" in fields:
        return f"{name} ({fields['iata']})" if name else f"IATA code {fields['iata']}"
    if "population" in fields:
        return f"{name} (population {fields['population']})"
    if "country" in fields:
        return f"{name} ({fields['country']})"
    return name


def plan_hops(task: Task) -> HopPlan | None:
    entry = _SHAPES.get(str(task.metadata.get("shape")))
    if entry is None:
        return None
    shape, pattern = entry
    match = pattern.fullmatch(task.question.strip())
    if match is None:
        return None
    kinds = [shape.kind] + [_LINKS[v][0] for v in shape.via]
    # Only a start country is asked about in Chinese: later hops read English pages.
    langs = [shape.language if shape.kind == "country" else "en"] + ["en"] * len(shape.via)
    titles = [_LINKS[v][1] for v in shape.via]
    answer_key = (kinds[-1], langs[-1], shape.answer)
    if answer_key not in _ANSWERS:
        return None
    titles.append(_ANSWERS[answer_key])
    hops = tuple(Hop(k, lang, t) for k, lang, t in zip(kinds, langs, titles, strict=True))
    return HopPlan(_first_ref(match.groupdict()), hops)


def next_ref(hop: Hop, value: str, ref: str) -> str:
    """The next entity: a capital is a city named with its country, a country by its name."""
    return f"{value} ({ref})" if hop.title == "Capital" else value
