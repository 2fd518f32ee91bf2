"""Render a FactBase as short web-like pages: entity pages, list pages and distractors.

Contract: `render_corpus(facts, seed)` returns every page (`Page`: id, url, title, text — the
runtime's local corpus record) plus an index of list pages by group, which task generation uses
for planning metadata. Facts are spread the way the web spreads them: a country's profile page
names its capital but the capital's population is only on the city page; ISO codes, calling code
and domain live on a separate "codes" page; list pages name members without their attributes.
Wording is drawn per page from several templates with an RNG seeded by (seed, url), so a page's
text does not depend on the order pages are rendered in. Long lists are split into parts so a page
stays under `PAGE_TOKEN_BUDGET` approximate tokens.

This module knows nothing about tasks, splits or scoring.
"""

from __future__ import annotations

import math
import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

from wideseek.world.facts import CONTINENTS, Entity, FactBase, slugify

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


def _n(value: int | float) -> str:
    return f"{value:,}"


def _join(names: Sequence[str], lang: str = "en") -> str:
    if lang == "zh":
        return "、".join(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


class _Writer:
    """Collects pages; picks template variants with a per-page seeded RNG."""

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

    def add_list(
        self,
        group: str,
        url: str,
        title: str,
        intro: Callable[[random.Random], str],
        items: Sequence[str],
        lang: str = "en",
    ) -> None:
        parts = [items[i : i + LIST_PART_SIZE] for i in range(0, len(items), LIST_PART_SIZE)]
        for k, part in enumerate(parts, 1):
            part_url = url if len(parts) == 1 else f"{url}/part-{k}"
            part_title = title if len(parts) == 1 else _part_title(title, k, len(parts), lang)
            lines = "\n".join(f"- {item}" for item in part)
            self.add(part_url, part_title, lambda rng, lines=lines: [intro(rng), "\n" + lines])
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
    neighbours = [facts.entities[n] for n in a["neighbours"]]
    capital = a["capital"]

    def profile(rng: random.Random) -> list[str]:
        return [
            rng.choice(
                [
                    f"{c.name} is a country in {a['continent']}.",
                    f"{c.name} is a sovereign state located in {a['continent']}.",
                    f"Located in {a['continent']}, {c.name} is one of the world's countries.",
                ]
            ),
            rng.choice(
                [
                    f"Its capital is {capital}.",
                    f"The capital city of {c.name} is {capital}.",
                    f"{capital} serves as the capital.",
                ]
            )
            if capital
            else f"{c.name} has no official capital city.",
            rng.choice(
                [
                    f"The population is {_n(a['population'])}.",
                    f"{c.name} has a population of about {_n(a['population'])} people.",
                    f"Population: {a['population']}.",
                ]
            ),
            rng.choice(
                [
                    f"It covers an area of {_n(a['area_km2'])} km².",
                    f"Total area: {_n(a['area_km2'])} square kilometres.",
                ]
            )
            if a["area_km2"]
            else "",
            rng.choice(
                [
                    f"The currency is the {a['currency']} ({a['currency_code']}).",
                    f"{c.name} uses the {a['currency']}, code {a['currency_code']}.",
                    f"Official currency: {a['currency']} ({a['currency_code']}).",
                ]
            )
            if a["currency"]
            else "",
            f"Languages spoken include {_join(a['languages'])}." if a["languages"] else "",
            rng.choice(
                [
                    f"It borders {_join([n.name for n in neighbours])}.",
                    f"Neighbouring countries: {_join([n.name for n in neighbours])}.",
                ]
            )
            if neighbours
            else rng.choice([f"{c.name} has no land borders.", "It shares no land border."]),
            rng.choice(
                [
                    f"ISO codes, dialling code and internet domain: see Country codes of {c.name}.",
                    f"For its codes, see the page Country codes of {c.name}.",
                ]
            ),
        ]

    def codes(rng: random.Random) -> list[str]:
        return [
            rng.choice(
                [
                    f"{c.name} has the ISO 3166-1 alpha-2 code {a['iso2']} "
                    f"and alpha-3 code {a['iso3']}.",
                    f"ISO 3166 codes for {c.name}: alpha-2 {a['iso2']}, alpha-3 {a['iso3']}.",
                ]
            ),
            rng.choice(
                [
                    f"The international calling code is +{a['calling_code']}.",
                    f"To phone {c.name} from abroad, dial +{a['calling_code']}.",
                ]
            )
            if a["calling_code"]
            else "",
            rng.choice(
                [
                    f"Its internet country code top-level domain is {a['tld']}.",
                    f"Websites in {c.name} often use the {a['tld']} domain.",
                ]
            )
            if a["tld"]
            else "",
        ]

    def currency_history(rng: random.Random) -> list[str]:
        return [f"Currency history of {c.name}."] + [
            rng.choice(
                [
                    f"From {old['from']} to {old['to']}, {c.name} used the {old['name']} "
                    f"({old['code']}).",
                    f"The {old['name']} ({old['code']}) was legal tender in {c.name} "
                    f"between {old['from']} and {old['to']}.",
                ]
            )
            for old in a["former_currencies"][-6:]
        ]

    w.add(entity_url(c), c.name, profile)
    w.add(entity_url(c, section="codes"), f"Country codes of {c.name}", codes)
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

    def page(rng: random.Random) -> list[str]:
        return [
            rng.choice(
                [
                    f"{c.name_zh}（{c.name}）是位于{a['continent_zh']}的国家。",
                    f"{c.name_zh}是{a['continent_zh']}的一个国家，英文名{c.name}。",
                ]
            ),
            f"首都为{a['capital']}。" if a["capital"] else "",
            rng.choice([f"人口约{a['population']}人。", f"总人口为{a['population']}。"]),
            f"面积为{a['area_km2']}平方公里。" if a["area_km2"] else "",
            rng.choice(
                [
                    f"通用货币为{a['currency_zh']}（{a['currency_code']}）。",
                    f"法定货币：{a['currency_zh']}，代码{a['currency_code']}。",
                ]
            )
            if a["currency_zh"]
            else "",
            f"ISO 3166-1 二位代码为{a['iso2']}，三位代码为{a['iso3']}。",
            rng.choice(
                [f"国际电话区号为+{a['calling_code']}。", f"国际长途区号：+{a['calling_code']}。"]
            )
            if a["calling_code"]
            else "",
            f"国家顶级域名为{a['tld']}。" if a["tld"] else "",
            f"邻国有{_join(neighbours, 'zh')}。" if neighbours else "该国没有陆地邻国。",
        ]

    w.add(entity_url(c, "zh"), c.name_zh or c.name, page)


def _city_page(w: _Writer, facts: FactBase, city: Entity, *, distractor: bool) -> None:
    a = city.attrs
    country = facts.entities[a["country"]]

    def page(rng: random.Random) -> list[str]:
        return [
            rng.choice(
                [
                    f"{city.name} is a city in {country.name}.",
                    f"{city.name} is an urban centre of {country.name}.",
                    f"The city of {city.name} lies in {country.name}.",
                ]
            ),
            rng.choice(
                [
                    f"It has a population of {_n(a['population'])}.",
                    f"Population: {a['population']} inhabitants.",
                    f"About {_n(a['population'])} people live there.",
                ]
            ),
            rng.choice(
                [
                    f"Coordinates: latitude {a['latitude']}, longitude {a['longitude']}.",
                    f"It lies at {a['latitude']}° latitude, {a['longitude']}° longitude "
                    "(decimal degrees).",
                ]
            ),
            rng.choice(
                [f"Time zone: {a['timezone']}.", f"Local time follows the {a['timezone']} zone."]
            ),
        ]

    if distractor:
        # A smaller namesake: same name, other country; its URL carries the GeoNames id.
        url = f"{BASE_URL}/city/{city.slug}-{city.key.split(':')[1]}"
        w.add(url, f"{city.name} ({country.name})", page)
    else:
        w.add(entity_url(city), f"{city.name}, {country.name}", page)


def _airport_page(w: _Writer, facts: FactBase, ap: Entity) -> None:
    a = ap.attrs
    country = facts.entities[a["country"]]

    def page(rng: random.Random) -> list[str]:
        return [
            rng.choice(
                [
                    f"{ap.name} is an airport serving {a['city']}, {country.name}.",
                    f"{ap.name} is located near {a['city']} in {country.name}.",
                ]
            ),
            rng.choice(
                [
                    f"IATA code: {a['iata']}. ICAO code: {a['icao']}.",
                    f"It has the IATA code {a['iata']} and the ICAO code {a['icao']}.",
                ]
            ),
            rng.choice(
                [
                    f"Elevation: {a['elevation_ft']} ft above sea level.",
                    f"The airfield sits at an elevation of {a['elevation_ft']} feet.",
                ]
            ),
            f"Time zone: {a['timezone']}.",
        ]

    w.add(entity_url(ap), f"{ap.name} ({a['iata']})", page)


def _element_page(w: _Writer, el: Entity) -> None:
    a = el.attrs

    def page(rng: random.Random) -> list[str]:
        return [
            rng.choice(
                [
                    f"{el.name} is a chemical element with symbol {a['symbol']} "
                    f"and atomic number {a['number']}.",
                    f"{el.name} (symbol {a['symbol']}) has atomic number {a['number']}.",
                ]
            ),
            rng.choice(
                [
                    f"Its standard atomic mass is {a['mass']}.",
                    f"Atomic mass: {a['mass']} u.",
                ]
            ),
            rng.choice(
                [
                    f"Density: {a['density']} g/cm³.",
                    f"It has a density of {a['density']} grams per cubic centimetre.",
                ]
            )
            if a["density"]
            else "Its density has not been measured.",
        ]

    w.add(entity_url(el), el.name, page)


def _state_page(w: _Writer, st: Entity) -> None:
    a = st.attrs

    def page(rng: random.Random) -> list[str]:
        return [
            rng.choice(
                [
                    f"{st.name} is a state of the United States, abbreviated {a['abbr']}.",
                    f"{st.name} ({a['abbr']}) is one of the 50 U.S. states.",
                ]
            ),
            rng.choice(
                [f"Its capital is {a['capital']}.", f"The state capital is {a['capital']}."]
            ),
            rng.choice(
                [
                    f"{st.name} was admitted to the Union in {a['statehood_year']}.",
                    f"Statehood year: {a['statehood_year']}.",
                ]
            ),
            f"FIPS state code: {a['fips']}.",
            f"The capital observes the {a['capital_tz']} time zone.",
        ]

    w.add(entity_url(st), st.name, page)


def _currency_pages(w: _Writer, facts: FactBase, cur: Entity) -> None:
    users = [facts.entities[k] for k in cur.attrs["countries"]]
    code = cur.attrs["code"]
    en_names = [u.name for u in alphabetical(users)]
    w.add_list(
        f"currency:{code}:en",
        entity_url(cur),
        cur.name,
        lambda rng: rng.choice(
            [
                f"The {cur.name} (ISO 4217 code {code}) is the currency of "
                "the following countries:",
                f"Countries and territories that use the {cur.name} ({code}):",
            ]
        ),
        en_names,
    )
    if cur.name_zh:
        zh_names = [u.name_zh for u in alphabetical(users) if u.name_zh]
        w.add_list(
            f"currency:{code}:zh",
            entity_url(cur, "zh"),
            cur.name_zh,
            lambda rng: f"{cur.name_zh}（ISO 4217代码{code}）是以下国家或地区的货币：",
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
            lambda rng, continent=continent: rng.choice(
                [
                    f"Countries in {continent}, in alphabetical order:",
                    f"The sovereign states and territories of {continent}:",
                ]
            ),
            [c.name for c in members],
        )
        zh_members = [c for c in members if c.name_zh]
        continent_zh = zh_members[0].attrs["continent_zh"]
        w.add_list(
            f"continent:{code}:zh",
            f"{BASE_URL}/zh/list/countries-of-{continent.lower().replace(' ', '-')}",
            f"{continent_zh}国家列表",
            lambda rng, cz=continent_zh: f"{cz}的国家和地区（按英文名排序）：",
            [c.name_zh for c in zh_members],
            "zh",
        )
    for country in facts.of_kind("country"):
        cities = cities_by_size(facts, country)
        if cities:
            w.add_list(
                f"cities:{country.attrs['iso2']}",
                f"{BASE_URL}/list/largest-cities-of-{country.slug}",
                f"Largest cities of {country.name}",
                lambda rng, country=country: rng.choice(
                    [
                        f"Cities of {country.name} ranked by population, largest first:",
                        f"The most populous cities in {country.name}, "
                        "in descending order of population:",
                    ]
                ),
                [c.name for c in cities],
            )
        airports = international_airports(facts, country)
        if airports:
            w.add_list(
                f"airports:{country.attrs['iso2']}",
                f"{BASE_URL}/list/international-airports-in-{country.slug}",
                f"International airports in {country.name}",
                lambda rng, country=country: f"International airports located in {country.name}:",
                [a.name for a in airports],
            )
    elements = sorted(facts.of_kind("element"), key=lambda e: e.attrs["number"])
    for start in range(0, len(elements), 10):
        block = elements[start : start + 10]
        lo, hi = block[0].attrs["number"], block[-1].attrs["number"]
        w.add_list(
            f"elements:{lo}-{hi}",
            f"{BASE_URL}/list/elements-{lo}-to-{hi}",
            f"Chemical elements {lo}–{hi}",
            lambda rng, lo=lo, hi=hi: (
                f"The chemical elements with atomic numbers {lo} to {hi}, in order:"
            ),
            [e.name for e in block],
        )
    w.add_list(
        "us_states",
        f"{BASE_URL}/list/us-states-by-admission",
        "U.S. states by date of admission",
        lambda rng: "The fifty states in the order they joined the Union:",
        [s.name for s in states_by_admission(facts)],
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
