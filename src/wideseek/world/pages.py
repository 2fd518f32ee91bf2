"""Render a FactBase as short web-like pages: entity pages, list pages and distractors.

Contract: `render_corpus(facts, seed)` returns every page (`Page`: id, url, title, text — the
runtime's local corpus record) plus an index of list pages by group, which task generation uses
for planning metadata. Facts are spread the way the web spreads them: a country's profile page
names its capital but the capital's population is only on the city page; ISO codes, calling code
and domain live on a separate "codes" page; list pages name members without their attributes,
except the number a list is ordered by, before each name as timelines and numbered tables show
it ("- 32: Germanium", "- 1845: Florida": an element's atomic number, a state's year of
admission).
This module decides which sentences a page holds and the facts they state; the sentences'
wordings live in `world/page_wordings.py`, the table the oracle reads pages back with. Wording
is drawn per page with an RNG seeded by (seed, url), so a page's text does not depend on the
order pages are rendered in. Long lists are split into parts so a page stays under
`PAGE_TOKEN_BUDGET` approximate tokens.

This module knows nothing about tasks, splits or scoring.
"""

from __future__ import annotations

import math
import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from wideseek.world.facts import CONTINENTS, Entity, FactBase, slugify
from wideseek.world.page_wordings import write

BASE_URL = "https://world.wideseek.local"
PAGE_TOKEN_BUDGET = 300
LIST_PART_SIZE = 15

_TOKEN_RE = re.compile(r"[\u3400-\u9fff]|[A-Za-z0-9]+|[^\sA-Za-z0-9]")


def approx_tokens(text: str) -> int:
    """A tokenizer-free upper-ish estimate: CJK chars, 4-char word pieces, punctuation."""
    return sum(
        math.ceil(len(t) / 4) if t.isascii() and t.isalnum() else 1 for t in _TOKEN_RE.findall(text)
    )


@dataclass(frozen=True)
class Page:
    id: str
    url: str
    title: str
    text: str

    def record(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class RenderedCorpus:
    pages: list[Page]
    # group key (e.g. "continent:EU:en", "cities:JP") -> URLs of its list page parts, in order.
    list_pages: dict[str, list[str]]


def entity_path(e: Entity) -> str:
    return f"{e.kind.replace('_', '-')}/{e.slug}"


def entity_url(e: Entity, lang: str = "en", section: str = "") -> str:
    prefix = "zh/" if lang == "zh" else ""
    return f"{BASE_URL}/{prefix}{entity_path(e)}{'/' + section if section else ''}"


def _join(names: Sequence[str], lang: str = "en") -> str:
    if lang == "zh":
        return "、".join(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


class _Writer:
    """Collects pages; picks wordings with a per-page seeded RNG."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.pages: list[Page] = []
        self.list_pages: dict[str, list[str]] = defaultdict(list)

    def add(self, url: str, title: str, pick: Callable[[random.Random], list[str]]) -> None:
        rng = random.Random(f"{self.seed}|{url}")
        text = " ".join(s for s in pick(rng) if s)
        self.pages.append(
            Page(id=url.removeprefix(BASE_URL + "/"), url=url, title=title, text=text)
        )

    def add_page(
        self,
        url: str,
        title: str,
        kind: str,
        sentences: Sequence[str | None],
        fields: Mapping[str, object],
    ) -> None:
        """A page of `kind`'s sentences, in this order (None: a sentence left out), stating
        `fields`."""
        self.add(url, title, lambda rng: [write(rng, kind, s, fields) for s in sentences if s])

    def add_list(
        self,
        group: str,
        url: str,
        title: str,
        intro: str,
        intro_fields: Mapping[str, object],
        items: Sequence[str],
        lang: str = "en",
    ) -> None:
        """A list page (in parts when long): the "list" sentence `intro`, then an "- item" line
        per item."""
        parts = [items[i : i + LIST_PART_SIZE] for i in range(0, len(items), LIST_PART_SIZE)]
        for k, part in enumerate(parts, 1):
            part_url = url if len(parts) == 1 else f"{url}/part-{k}"
            part_title = title if len(parts) == 1 else _part_title(title, k, len(parts), lang)
            lines = "\n".join(f"- {item}" for item in part)
            self.add(
                part_url,
                part_title,
                lambda rng, lines=lines: [write(rng, "list", intro, intro_fields), "\n" + lines],
            )
            self.list_pages[group].append(part_url)


def _part_title(title: str, k: int, n: int, lang: str) -> str:
    return f"{title}（第{k}/{n}部分）" if lang == "zh" else f"{title} (part {k} of {n})"


def render_corpus(facts: FactBase, seed: int) -> RenderedCorpus:
    w = _Writer(seed)
    for country in facts.of_kind("country"):
        _country_pages(w, facts, country)
    for city in facts.of_kind("city"):
        _city_page(w, facts, city, distractor=False)
    for city in facts.distractor_cities:
        _city_page(w, facts, city, distractor=True)
    for airport in facts.of_kind("airport"):
        _airport_page(w, facts, airport)
    for element in facts.of_kind("element"):
        _element_page(w, element)
    for state in facts.of_kind("us_state"):
        _state_page(w, state)
    for currency in facts.of_kind("currency"):
        _currency_pages(w, facts, currency)
    _list_pages(w, facts)
    return RenderedCorpus(pages=w.pages, list_pages=dict(w.list_pages))


def _country_pages(w: _Writer, facts: FactBase, c: Entity) -> None:
    a = c.attrs
    neighbours = [facts.entities[n].name for n in a["neighbours"]]
    profile = {
        **a,
        "name": c.name,
        "languages": _join(a["languages"]),
        "neighbours": _join(neighbours),
    }
    w.add_page(
        entity_url(c),
        c.name,
        "country",
        [
            "intro",
            "capital" if a["capital"] else "no_capital",
            "population",
            "area" if a["area_km2"] else None,
            "currency" if a["currency"] else None,
            "languages" if a["languages"] else None,
            "neighbours" if neighbours else "no_neighbours",
            "codes_page",
        ],
        profile,
    )
    w.add_page(
        entity_url(c, section="codes"),
        f"Country codes of {c.name}",
        "country_codes",
        ["iso", "calling_code" if a["calling_code"] else None, "tld" if a["tld"] else None],
        {**a, "name": c.name, "calling_code": f"+{a['calling_code']}"},
    )

    def currency_history(rng: random.Random) -> list[str]:
        return [write(rng, "country_currency_history", "title", {"name": c.name})] + [
            write(
                rng,
                "country_currency_history",
                "former_currency",
                {
                    "name": c.name,
                    "currency": old["name"],
                    "currency_code": old["code"],
                    "start": old["from"],
                    "end": old["to"],
                },
            )
            for old in a["former_currencies"][-6:]
        ]

    if a["former_currencies"]:
        w.add(
            entity_url(c, section="currency-history"),
            f"Former currencies of {c.name}",
            currency_history,
        )
    if c.name_zh:
        _country_page_zh(w, facts, c)


def _country_page_zh(w: _Writer, facts: FactBase, c: Entity) -> None:
    a = c.attrs
    neighbours = [facts.entities[n].name_zh or facts.entities[n].name for n in a["neighbours"]]
    fields = {
        **a,
        "name": c.name_zh,
        "name_en": c.name,
        "continent": a["continent_zh"],
        "currency": a["currency_zh"],
        "calling_code": f"+{a['calling_code']}",
        "neighbours": _join(neighbours, "zh"),
    }
    sentences = [
        "intro",
        "capital" if a["capital"] else None,
        "population",
        "area" if a["area_km2"] else None,
        "currency" if a["currency_zh"] else None,
        "iso",
        "calling_code" if a["calling_code"] else None,
        "tld" if a["tld"] else None,
        "neighbours" if neighbours else "no_neighbours",
    ]
    w.add_page(entity_url(c, "zh"), c.name_zh or c.name, "country_zh", sentences, fields)


def _city_page(w: _Writer, facts: FactBase, city: Entity, *, distractor: bool) -> None:
    country = facts.entities[city.attrs["country"]]
    fields = {**city.attrs, "name": city.name, "country": country.name}
    if distractor:
        # A smaller namesake: same name, other country; its URL carries the GeoNames id.
        url = f"{BASE_URL}/city/{city.slug}-{city.key.split(':')[1]}"
        title = f"{city.name} ({country.name})"
    else:
        url, title = entity_url(city), f"{city.name}, {country.name}"
    w.add_page(url, title, "city", ["intro", "population", "coordinates", "timezone"], fields)


def _airport_page(w: _Writer, facts: FactBase, ap: Entity) -> None:
    a = ap.attrs
    w.add_page(
        entity_url(ap),
        f"{ap.name} ({a['iata']})",
        "airport",
        ["intro", "codes", "elevation", "timezone"],
        {**a, "name": ap.name, "country": facts.entities[a["country"]].name},
    )


def _element_page(w: _Writer, el: Entity) -> None:
    sentences = ["intro", "mass", "density" if el.attrs["density"] else "no_density"]
    w.add_page(entity_url(el), el.name, "element", sentences, {**el.attrs, "name": el.name})


def _state_page(w: _Writer, st: Entity) -> None:
    sentences = ["intro", "capital", "statehood", "fips", "capital_tz"]
    w.add_page(entity_url(st), st.name, "us_state", sentences, {**st.attrs, "name": st.name})


def _currency_pages(w: _Writer, facts: FactBase, cur: Entity) -> None:
    users = [facts.entities[k] for k in cur.attrs["countries"]]
    code = cur.attrs["code"]
    en_names = [u.name for u in alphabetical(users)]
    w.add_list(
        f"currency:{code}:en",
        entity_url(cur),
        cur.name,
        "currency_users",
        {"currency": cur.name, "code": code},
        en_names,
    )
    if cur.name_zh:
        zh_names = [u.name_zh for u in alphabetical(users) if u.name_zh]
        w.add_list(
            f"currency:{code}:zh",
            entity_url(cur, "zh"),
            cur.name_zh,
            "currency_users_zh",
            {"currency": cur.name_zh, "code": code},
            zh_names,
            "zh",
        )


def _list_pages(w: _Writer, facts: FactBase) -> None:
    for code, (continent, _) in CONTINENTS.items():
        members = countries_of_continent(facts, continent)
        w.add_list(
            f"continent:{code}:en",
            f"{BASE_URL}/list/countries-of-{continent.lower().replace(' ', '-')}",
            f"Countries of {continent}",
            "continent",
            {"continent": continent},
            [c.name for c in members],
        )
        zh_members = [c for c in members if c.name_zh]
        continent_zh = zh_members[0].attrs["continent_zh"]
        w.add_list(
            f"continent:{code}:zh",
            f"{BASE_URL}/zh/list/countries-of-{continent.lower().replace(' ', '-')}",
            f"{continent_zh}国家列表",
            "continent_zh",
            {"continent": continent_zh},
            [c.name_zh for c in zh_members],
            "zh",
        )
    for country in facts.of_kind("country"):
        # Each country's two list pages: (group, URL path, title, opening sentence, members).
        lists = [
            (
                "cities",
                "largest-cities-of",
                f"Largest cities of {country.name}",
                "largest_cities",
                cities_by_size(facts, country),
            ),
            (
                "airports",
                "international-airports-in",
                f"International airports in {country.name}",
                "international_airports",
                international_airports(facts, country),
            ),
        ]
        for group, path, title, intro, members in lists:
            if members:
                w.add_list(
                    f"{group}:{country.attrs['iso2']}",
                    f"{BASE_URL}/list/{path}-{country.slug}",
                    title,
                    intro,
                    {"country": country.name},
                    [m.name for m in members],
                )
    elements = sorted(facts.of_kind("element"), key=lambda e: e.attrs["number"])
    for start in range(0, len(elements), 10):
        block = elements[start : start + 10]
        lo, hi = block[0].attrs["number"], block[-1].attrs["number"]
        w.add_list(
            f"elements:{lo}-{hi}",
            f"{BASE_URL}/list/elements-{lo}-to-{hi}",
            f"Chemical elements {lo}–{hi}",
            "elements",
            {"lo": lo, "hi": hi},
            [f"{e.attrs['number']}: {e.name}" for e in block],
        )
    w.add_list(
        "us_states",
        f"{BASE_URL}/list/us-states-by-admission",
        "U.S. states by date of admission",
        "us_states",
        {},
        [f"{s.attrs['statehood_year']}: {s.name}" for s in states_by_admission(facts)],
    )


def alphabetical(entities: Iterable[Entity]) -> list[Entity]:
    """Dictionary order of English names, accents folded ("Åland" files under A, not after Z)."""
    return sorted(entities, key=lambda e: (slugify(e.name), e.name))


def countries_of_continent(facts: FactBase, continent: str) -> list[Entity]:
    return alphabetical(c for c in facts.of_kind("country") if c.attrs["continent"] == continent)


def cities_by_size(facts: FactBase, country: Entity) -> list[Entity]:
    return sorted(
        (c for c in facts.of_kind("city") if c.attrs["country"] == country.key),
        key=lambda c: (-c.attrs["population"], c.name),
    )


def international_airports(facts: FactBase, country: Entity) -> list[Entity]:
    return sorted(
        (
            a
            for a in facts.of_kind("airport")
            if a.attrs["country"] == country.key and a.attrs["international"]
        ),
        key=lambda a: (slugify(a.name), a.name),
    )


def states_by_admission(facts: FactBase) -> list[Entity]:
    return sorted(facts.of_kind("us_state"), key=lambda s: (s.attrs["statehood_year"], s.name))
