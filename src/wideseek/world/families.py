"""Wide-task families: which entity sets ("groups") a wide question can be about.

Contract: `enumerate_groups(facts, corpus)` yields every `Group` of every family: the member
entities (the gold rows, in a stable order), the entity kind, the languages it can be asked in,
how to describe it in a query (en / zh), the list pages that name its members, and a `split_key`
identifying the group inside its family — splits are assigned per (family, split_key), so a
dev/test group never shares its entity set with a train group of the same family.

This module knows nothing about columns, query wording beyond the group's subject phrase, or files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from wideseek.world.facts import CONTINENTS, Entity, FactBase
from wideseek.world.pages import (
    LIST_PART_SIZE,
    RenderedCorpus,
    alphabetical,
    cities_by_size,
    countries_of_continent,
    entity_url,
    international_airports,
    states_by_admission,
)

MIN_ROWS, MAX_ROWS = 3, 60
MAX_WINDOW = 15  # most groups stay small enough for a small model's context ...
LARGE_TOP_N = (20, 25, 30, 40)  # ... and a few "top N cities" groups are larger
ELEMENT_BLOCK = 15
STATE_BLOCK = 10


@dataclass(frozen=True)
class Group:
    family: str
    split_key: str
    kind: str
    members: tuple[Entity, ...]
    subject: dict[str, str]  # language -> noun phrase naming the entity set
    list_pages: dict[str, tuple[str, ...]]  # language -> URLs that enumerate the members
    members_from: str  # how the list pages give the members (planning hint for the oracle)


def enumerate_groups(facts: FactBase, corpus: RenderedCorpus) -> Iterator[Group]:
    yield from _neighbour_groups(facts)
    yield from _continent_part_groups(facts, corpus)
    yield from _currency_groups(facts, corpus)
    yield from _city_groups(facts, corpus)
    yield from _airport_groups(facts, corpus)
    yield from _element_groups(facts, corpus)
    yield from _state_groups(facts, corpus)


def _sized(members: list[Entity]) -> bool:
    return MIN_ROWS <= len(members) <= MAX_ROWS


def _zh_ready(members: list[Entity]) -> bool:
    return all(m.name_zh for m in members)


def _neighbour_groups(facts: FactBase) -> Iterator[Group]:
    for c in facts.of_kind("country"):
        members = [facts.entities[k] for k in c.attrs["neighbours"]]
        if not _sized(members) or len(members) > MAX_WINDOW:
            continue
        subject = {"en": f"the countries that share a land border with {c.name}"}
        pages = {"en": (entity_url(c),)}
        if c.name_zh and _zh_ready(members):
            subject["zh"] = f"与{c.name_zh}陆地接壤的所有国家"
            pages["zh"] = (entity_url(c, "zh"),)
        yield Group("neighbours", c.key, "country", tuple(members), subject, pages, "neighbours")


def _continent_part_groups(facts: FactBase, corpus: RenderedCorpus) -> Iterator[Group]:
    for code, (continent, _) in CONTINENTS.items():
        members = countries_of_continent(facts, continent)
        urls = corpus.list_pages[f"continent:{code}:en"]
        for k, url in enumerate(urls):
            part = members[k * LIST_PART_SIZE : (k + 1) * LIST_PART_SIZE]
            if not _sized(part):
                continue
            first, last = part[0].name, part[-1].name
            subject = {
                "en": f"the countries and territories of {continent} whose English names fall "
                f"alphabetically from {first} to {last} (inclusive)"
            }
            pages = {"en": (url,)}
            if _zh_ready(part):
                cz = part[0].attrs["continent_zh"]
                subject["zh"] = f"{cz}英文名称按字母顺序从{first}到{last}（含）的国家和地区"
                pages["zh"] = tuple(corpus.list_pages[f"continent:{code}:zh"])
            yield Group(
                "continent_part", f"{code}:{k}", "country", tuple(part), subject, pages, "list"
            )


def _currency_groups(facts: FactBase, corpus: RenderedCorpus) -> Iterator[Group]:
    for cur in facts.of_kind("currency"):
        members = alphabetical(facts.entities[k] for k in cur.attrs["countries"])
        if not _sized(members):
            continue
        code = cur.attrs["code"]
        subject = {
            "en": f"every country or territory whose official currency is the {cur.name} ({code})"
        }
        pages = {"en": tuple(corpus.list_pages[f"currency:{code}:en"])}
        if cur.name_zh and _zh_ready(members):
            subject["zh"] = f"以{cur.name_zh}（{code}）为法定货币的所有国家和地区"
            pages["zh"] = tuple(corpus.list_pages[f"currency:{code}:zh"])
        yield Group("currency_users", code, "country", tuple(members), subject, pages, "list")


def _city_groups(facts: FactBase, corpus: RenderedCorpus) -> Iterator[Group]:
    for c in facts.of_kind("country"):
        cities = cities_by_size(facts, c)
        if len(cities) < MIN_ROWS:
            continue
        urls = corpus.list_pages[f"cities:{c.attrs['iso2']}"]
        # Top-N groups of one country share the split key: they overlap in entities.
        sizes = [*range(MIN_ROWS, MAX_WINDOW + 1), *LARGE_TOP_N]
        for n in (n for n in sizes if n <= len(cities)):
            subject = {"en": f"the {n} most populous cities of {c.name}"}
            pages = {"en": tuple(urls[: -(-n // LIST_PART_SIZE)])}
            yield Group(
                "largest_cities", c.key, "city", tuple(cities[:n]), subject, pages, "ranked_list"
            )


def _airport_groups(facts: FactBase, corpus: RenderedCorpus) -> Iterator[Group]:
    for c in facts.of_kind("country"):
        airports = international_airports(facts, c)
        if not _sized(airports):
            continue
        subject = {
            "en": f"all international airports in {c.name} "
            "(airports with “International” in their name)"
        }
        pages = {"en": tuple(corpus.list_pages[f"airports:{c.attrs['iso2']}"])}
        yield Group("intl_airports", c.key, "airport", tuple(airports), subject, pages, "list")


def _element_groups(facts: FactBase, corpus: RenderedCorpus) -> Iterator[Group]:
    """Atomic-number windows. A window stays inside one block of ELEMENT_BLOCK numbers and the
    block is the split key, so dev/test windows share no element with any train window."""
    elements = sorted(facts.of_kind("element"), key=lambda e: e.attrs["number"])
    blocks = {key: urls for key, urls in corpus.list_pages.items() if key.startswith("elements:")}
    for lo in range(1, len(elements) + 1):
        block = (lo - 1) // ELEMENT_BLOCK
        for n in range(MIN_ROWS, MAX_WINDOW + 1):
            hi = lo + n - 1
            if hi > len(elements) or (hi - 1) // ELEMENT_BLOCK != block:
                break
            pages = tuple(
                url
                for key, urls in blocks.items()
                for url in urls
                if _overlaps(key.split(":")[1], lo, hi)
            )
            subject = {"en": f"the chemical elements with atomic numbers {lo} to {hi}"}
            members = tuple(elements[lo - 1 : hi])
            yield Group(
                "element_range",
                f"block-{block}",
                "element",
                members,
                subject,
                {"en": pages},
                "list",
            )


def _overlaps(block: str, lo: int, hi: int) -> bool:
    a, b = (int(x) for x in block.split("-"))
    return a <= hi and lo <= b


def _state_groups(facts: FactBase, corpus: RenderedCorpus) -> Iterator[Group]:
    """Admission-year windows, kept inside blocks of consecutive years holding about
    STATE_BLOCK states; the block is the split key (no state shared across splits)."""
    states = states_by_admission(facts)
    urls = tuple(corpus.list_pages["us_states"])
    for block, years in enumerate(_year_blocks(states)):
        for i, y1 in enumerate(years):
            for y2 in years[i:]:
                members = [s for s in states if y1 <= s.attrs["statehood_year"] <= y2]
                if len(members) > MAX_WINDOW:
                    break
                if len(members) < MIN_ROWS:
                    continue
                subject = {
                    "en": f"the U.S. states admitted to the Union from {y1} to {y2} (inclusive)"
                }
                yield Group(
                    "states_admitted",
                    f"block-{block}",
                    "us_state",
                    tuple(members),
                    subject,
                    {"en": urls},
                    "list",
                )


def _year_blocks(states: list[Entity]) -> list[list[int]]:
    blocks: list[list[int]] = [[]]
    in_block = 0
    for year in sorted({s.attrs["statehood_year"] for s in states}):
        if in_block >= STATE_BLOCK:
            blocks.append([])
            in_block = 0
        blocks[-1].append(year)
        in_block += sum(1 for s in states if s.attrs["statehood_year"] == year)
    return blocks
