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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from wideseek.world.facts import Entity, FactBase
from wideseek.world.pages import entity_url
from wideseek.world.wide_tasks import SPLITS

Ask = Callable[[Entity, FactBase], tuple[str, list[str], list[str]] | None]


@dataclass(frozen=True)
class Shape:
    name: str
    kind: str
    language: str
    hops: int
    ask: Ask  # entity -> (question, golden answers, pages to read in hop order) or None


@dataclass
class DeepTask:
    record: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)


def _number_answers(value: int) -> list[str]:
    return list(dict.fromkeys([str(value), f"{value:,}"]))


def _capital_city(c: Entity, facts: FactBase) -> Entity | None:
    return facts.get(c.attrs["capital_city"])


def _country(e: Entity, facts: FactBase) -> Entity:
    return facts.entities[e.attrs["country"]]


SHAPES: tuple[Shape, ...] = (
    Shape(
        "country_capital",
        "country",
        "en",
        1,
        lambda c, f: (
            (f"What is the capital of {c.name}?", [c.attrs["capital"]], [entity_url(c)])
            if c.attrs["capital"]
            else None
        ),
    ),
    Shape(
        "country_iso3",
        "country",
        "en",
        1,
        lambda c, f: (
            f"What is the ISO 3166-1 alpha-3 code of {c.name}?",
            [c.attrs["iso3"]],
            [entity_url(c, section="codes")],
        ),
    ),
    Shape(
        "country_currency_code",
        "country",
        "en",
        1,
        lambda c, f: (
            (
                f"What is the ISO 4217 code of the currency used in {c.name}?",
                [c.attrs["currency_code"]],
                [entity_url(c)],
            )
            if c.attrs["currency_code"]
            else None
        ),
    ),
    Shape(
        "country_calling_code_zh",
        "country",
        "zh",
        1,
        lambda c, f: (
            (
                f"{c.name_zh}的国际电话区号是多少？",
                [c.attrs["calling_code"], "+" + c.attrs["calling_code"]],
                [entity_url(c, "zh")],
            )
            if c.name_zh and c.attrs["calling_code"]
            else None
        ),
    ),
    Shape(
        "country_currency_zh",
        "country",
        "zh",
        1,
        lambda c, f: (
            (f"{c.name_zh}使用的法定货币叫什么？", [c.attrs["currency_zh"]], [entity_url(c, "zh")])
            if c.name_zh and c.attrs["currency_zh"]
            else None
        ),
    ),
    Shape(
        "city_population",
        "city",
        "en",
        1,
        lambda e, f: (
            f"What is the population of {e.name}, {_country(e, f).name}?",
            _number_answers(e.attrs["population"]),
            [entity_url(e)],
        ),
    ),
    Shape(
        "airport_icao",
        "airport",
        "en",
        1,
        lambda e, f: (
            f"What is the ICAO code of the airport with IATA code {e.attrs['iata']}?",
            [e.attrs["icao"]],
            [entity_url(e)],
        ),
    ),
    Shape(
        "element_symbol",
        "element",
        "en",
        1,
        lambda e, f: (
            f"What is the chemical symbol of {e.name.lower()}?",
            [e.attrs["symbol"]],
            [entity_url(e)],
        ),
    ),
    Shape(
        "state_statehood",
        "us_state",
        "en",
        1,
        lambda e, f: (
            f"In which year was {e.name} admitted to the Union?",
            [str(e.attrs["statehood_year"])],
            [entity_url(e)],
        ),
    ),
    Shape(
        "capital_population",
        "country",
        "en",
        2,
        lambda c, f: (
            (
                f"How many people live in the capital city of {c.name}?",
                _number_answers(_capital_city(c, f).attrs["population"]),
                [entity_url(c), entity_url(_capital_city(c, f))],
            )
            if _capital_city(c, f)
            else None
        ),
    ),
    Shape(
        "airport_country_capital",
        "airport",
        "en",
        2,
        lambda e, f: (
            (
                f"What is the capital of the country where the airport with IATA code "
                f"{e.attrs['iata']} is located?",
                [_country(e, f).attrs["capital"]],
                [entity_url(e), entity_url(_country(e, f))],
            )
            if _country(e, f).attrs["capital"]
            else None
        ),
    ),
    Shape(
        "airport_country_currency",
        "airport",
        "en",
        2,
        lambda e, f: (
            (
                f"Which currency code is used in the country that has the airport "
                f"{e.name} ({e.attrs['iata']})?",
                [_country(e, f).attrs["currency_code"]],
                [entity_url(e), entity_url(_country(e, f))],
            )
            if _country(e, f).attrs["currency_code"]
            else None
        ),
    ),
    Shape(
        "city_country_calling_code",
        "city",
        "en",
        2,
        lambda e, f: (
            (
                f"What is the international calling code of the country in which "
                f"the city of {e.name} "
                f"(population {e.attrs['population']:,}) lies?",
                [_country(e, f).attrs["calling_code"], "+" + _country(e, f).attrs["calling_code"]],
                [entity_url(e), entity_url(_country(e, f), section="codes")],
            )
            if _country(e, f).attrs["calling_code"]
            else None
        ),
    ),
    Shape(
        "airport_country_calling_code_zh",
        "airport",
        "zh",
        2,
        lambda e, f: (
            (
                f"IATA代码为{e.attrs['iata']}的机场所在国家的国际电话区号是多少？",
                [_country(e, f).attrs["calling_code"], "+" + _country(e, f).attrs["calling_code"]],
                [entity_url(e), entity_url(_country(e, f), "zh")],
            )
            if _country(e, f).name_zh and _country(e, f).attrs["calling_code"]
            else None
        ),
    ),
)


def _split_of(shape: Shape, entity: Entity, seed: int) -> str:
    draw = random.Random(f"{seed}|deep|{shape.name}|{entity.key}").random()
    return "dev" if draw < 0.1 else "test" if draw < 0.2 else "train"


def make_deep_suites(
    facts: FactBase, seed: int, sizes: dict[str, int]
) -> dict[str, list[DeepTask]]:
    pools: dict[str, list[DeepTask]] = {s: [] for s in SPLITS}
    for shape in SHAPES:
        for entity in facts.of_kind(shape.kind):
            asked = shape.ask(entity, facts)
            if asked is None:
                continue
            question, answers, pages = asked
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
