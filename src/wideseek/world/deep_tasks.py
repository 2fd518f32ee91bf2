"""Deep (single-hop and multi-hop) QA tasks over the world's facts, scored by EM / F1.

Contract: `make_deep_suites(facts, seed, sizes)` returns per split a list of `DeepTask`: the
open-domain QA record (`id`, `question`, `golden_answers`, `language`) and planning metadata
(shape, hops, the pages that hold each hop's fact — never the answer). A shape is a question
template; each (shape, start entity) pair is put in exactly one split by a seeded hash, so a
dev/test question never asks a train shape about the same entity.

This module knows nothing about files or page text beyond URLs.
"""

from __future__ import annotations

import random
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from wideseek.world.facts import Entity, FactBase
from wideseek.world.pages import entity_url
from wideseek.world.wide_tasks import SPLITS


@dataclass(frozen=True)
class Shape:
    """A question template walked from a start entity along link attributes to an answer.

    `via` names the attributes that link each hop to the next entity (a city's "country", a
    country's "capital_city"); the answer is `answer` on the last entity, written on that
    entity's page (or its `section` sub-page). The question is formatted with the start entity
    `e`, its attributes `a` and, for row kinds that have one, its `country`.
    """

    name: str
    kind: str
    language: str
    question: str
    answer: str
    via: tuple[str, ...] = ()
    section: str = ""

    @property
    def hops(self) -> int:
        return len(self.via) + 1


SHAPES: tuple[Shape, ...] = (
    Shape("country_capital", "country", "en", "What is the capital of {e.name}?", "capital"),
    Shape(
        "country_iso3",
        "country",
        "en",
        "What is the ISO 3166-1 alpha-3 code of {e.name}?",
        "iso3",
        section="codes",
    ),
    Shape(
        "country_currency_code",
        "country",
        "en",
        "What is the ISO 4217 code of the currency used in {e.name}?",
        "currency_code",
    ),
    Shape(
        "country_calling_code_zh",
        "country",
        "zh",
        "{e.name_zh}的国际电话区号是多少？",
        "calling_code",
    ),
    Shape(
        "country_currency_zh", "country", "zh", "{e.name_zh}使用的法定货币叫什么？", "currency_zh"
    ),
    Shape(
        "city_population",
        "city",
        "en",
        "What is the population of {e.name}, {country.name}?",
        "population",
    ),
    Shape(
        "airport_icao",
        "airport",
        "en",
        "What is the ICAO code of the airport with IATA code {a[iata]}?",
        "icao",
    ),
    Shape("element_symbol", "element", "en", "What is the chemical symbol of {e.name}?", "symbol"),
    Shape(
        "state_statehood",
        "us_state",
        "en",
        "In which year was {e.name} admitted to the Union?",
        "statehood_year",
    ),
    Shape(
        "capital_population",
        "country",
        "en",
        "How many people live in the capital city of {e.name}?",
        "population",
        via=("capital_city",),
    ),
    Shape(
        "airport_country_capital",
        "airport",
        "en",
        "What is the capital of the country where the airport with IATA code {a[iata]} is located?",
        "capital",
        via=("country",),
    ),
    Shape(
        "airport_country_currency",
        "airport",
        "en",
        "Which currency code is used in the country that has the airport {e.name} ({a[iata]})?",
        "currency_code",
        via=("country",),
    ),
    Shape(
        "city_country_calling_code",
        "city",
        "en",
        "What is the international calling code of the country in which the city of {e.name} "
        "(population {a[population]:,}) lies?",
        "calling_code",
        via=("country",),
        section="codes",
    ),
    Shape(
        "airport_country_calling_code_zh",
        "airport",
        "zh",
        "IATA代码为 {a[iata]} 的机场所在国家的国际电话区号是多少？",
        "calling_code",
        via=("country",),
    ),
)


@dataclass
class DeepTask:
    record: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)


def _answers(attr: str, value: Any) -> list[str]:
    """The answer and the spellings EM should also accept (grouped digits, a "+" prefix)."""
    if attr == "calling_code":
        return [str(value), f"+{value}"]
    if attr == "population":
        return [str(value), f"{value:,}"]
    return [str(value)]


def ask(
    shape: Shape, start: Entity, facts: FactBase
) -> tuple[str, list[str], list[str], list[str]] | None:
    """(question, golden answers, page URLs in hop order, the question template's field values
    in order), or None when a hop has no fact."""
    chain = [start]
    for link in shape.via:
        nxt = facts.get(chain[-1].attrs.get(link))
        if nxt is None:
            return None
        chain.append(nxt)
    value = chain[-1].attrs.get(shape.answer)
    countries = [e for e in chain if e.kind == "country"]
    if value in (None, "") or (shape.language == "zh" and not all(c.name_zh for c in countries)):
        return None
    # Country pages exist in Chinese; other kinds are read on their English page.
    langs = [shape.language if e.kind == "country" else "en" for e in chain]
    pages = [entity_url(e, lang) for e, lang in zip(chain[:-1], langs, strict=False)]
    last_section = shape.section if langs[-1] == "en" else ""
    pages.append(entity_url(chain[-1], langs[-1], section=last_section))
    country = facts.get(start.attrs.get("country"))
    fields = {"e": start, "a": start.attrs, "country": country}
    question = shape.question.format(**fields)
    formatter = string.Formatter()
    slots = [  # each field as the question writes it
        formatter.format_field(
            formatter.convert_field(formatter.get_field(name, (), fields)[0], conv), spec or ""
        )
        for _, name, spec, conv in formatter.parse(shape.question)
        if name is not None
    ]
    return question, _answers(shape.answer, value), pages, slots


def _split_of(shape: Shape, entity: Entity, seed: int) -> str:
    draw = random.Random(f"{seed}|deep|{shape.name}|{entity.key}").random()
    return "dev" if draw < 0.1 else "test" if draw < 0.2 else "train"


def make_deep_suites(
    facts: FactBase, seed: int, sizes: dict[str, int]
) -> dict[str, list[DeepTask]]:
    pools: dict[str, list[DeepTask]] = {s: [] for s in SPLITS}
    for shape in SHAPES:
        for entity in facts.of_kind(shape.kind):
            asked = ask(shape, entity, facts)
            if asked is None:
                continue
            question, answers, pages, slots = asked
            record = {
                "id": "",
                "question": question,
                "golden_answers": answers,
                "language": shape.language,
            }
            meta = {
                "shape": shape.name,
                "hops": shape.hops,
                "entity_kind": shape.kind,
                "pages": pages,
                "slots": slots,  # the template's field values: a rewording reads them
            }
            pools[_split_of(shape, entity, seed)].append(DeepTask(record, meta))
    return {split: _sample(pools[split], sizes[split], seed, split) for split in SPLITS}


def _sample(pool: Sequence[DeepTask], size: int, seed: int, split: str) -> list[DeepTask]:
    """Up to `size` tasks, balanced over shapes so that big kinds (cities) do not swamp the rest."""
    rng = random.Random(f"{seed}|deep-sample|{split}")
    by_shape: dict[str, list[DeepTask]] = {}
    for task in pool:
        by_shape.setdefault(task.meta["shape"], []).append(task)
    for tasks in by_shape.values():
        rng.shuffle(tasks)
    chosen: list[DeepTask] = []
    while len(chosen) < size and any(by_shape.values()):
        for name in sorted(by_shape):
            if by_shape[name] and len(chosen) < size:
                chosen.append(by_shape[name].pop())
    rng.shuffle(chosen)
    for n, task in enumerate(chosen, 1):
        task.record["id"] = f"wsw_deep_{task.record['language']}_{split}_{n:05d}"
        task.meta["id"] = task.record["id"]
    return chosen
