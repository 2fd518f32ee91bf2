"""Look up facts about one named entity: search its page, open it, read the asked columns.

Contract. `lookup(kind, lang, ref, titles, capacity)` is a step routine (see `oracle.steps`)
returning {title: value or None}, or None when the entity's own page could not be found.
`ref` names the entity the way the oracle's subtasks do: "Ghana", "Rabat (Morocco)",
"Rāmpur (population 296,418)", "IATA code SJC", "Pago Pago International Airport (PPG)".

Which page holds which column comes from `world/columns.py` (`Column.source`: the entity's page,
its ".../codes" page, or the page of its capital city); how to search for a page and how to
recognise it among the hits is the table below, written against the titles the pages carry.
Every value is read by `page_facts` from the text of a page opened in this very routine.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from wideseek.tools.base import Page, SearchHit
from wideseek.world.columns import COLUMNS
from wideseek.world.oracle.page_facts import read_attr
from wideseek.world.oracle.steps import Steps, Want, find_pages, fold

# (kind, language) -> column title -> attribute read from the page. Titles beyond the wide
# columns ("Country" of a city or airport) serve the hops of deep questions.
ATTRIBUTES: dict[tuple[str, str], dict[str, str]] = {
    ("country", "en"): {
        "Capital": "capital",
        "Capital Population": "population",
        "Population": "population",
        "Area (km²)": "area_km2",
        "Currency": "currency",
        "Currency Code": "currency_code",
        "Languages": "languages",
        "ISO Alpha-3 Code": "iso3",
        "Calling Code": "calling_code",
        "Top-Level Domain": "tld",
        "Profile Page": "url",
    },
    ("country", "zh"): {
        "英文名称": "name_en",
        "人口": "population",
        "面积（平方公里）": "area_km2",
        "货币": "currency",
        "货币代码": "currency_code",
        "ISO三位代码": "iso3",
        "国际电话区号": "calling_code",
        "顶级域名": "tld",
    },
    ("city", "en"): {
        "Population": "population",
        "Latitude": "latitude",
        "Longitude": "longitude",
        "Time Zone": "timezone",
        "Country": "country",
    },
    ("airport", "en"): {
        "IATA Code": "iata",
        "ICAO Code": "icao",
        "City Served": "city",
        "Elevation (ft)": "elevation_ft",
        "Time Zone": "timezone",
        "Country": "country",
    },
    ("element", "en"): {
        "Symbol": "symbol",
        "Atomic Number": "number",
        "Atomic Mass": "mass",
        "Density (g/cm³)": "density",
    },
    ("us_state", "en"): {
        "Abbreviation": "abbr",
        "Capital": "capital",
        "Statehood Year": "statehood_year",
        "FIPS Code": "fips",
        "Capital Time Zone": "capital_tz",
    },
}
# A Chinese profile leaves out what it has no Chinese words for (a currency without a Chinese
# name takes its code along); the English pages state these facts too.
ENGLISH_TITLE = {
    "人口": "Population",
    "面积（平方公里）": "Area (km²)",
    "货币代码": "Currency Code",
    "ISO三位代码": "ISO Alpha-3 Code",
    "国际电话区号": "Calling Code",
    "顶级域名": "Top-Level Domain",
}
_SOURCES = {(kind, lang, c.title): c.source for (kind, lang), cols in COLUMNS.items() for c in cols}
PROFILE, CODES, CAPITAL = "entity", "entity/codes", "capital_city"


def source_of(kind: str, lang: str, title: str) -> str:
    return _SOURCES.get((kind, lang, title), PROFILE)


def page_cost(kind: str, lang: str, titles: Sequence[str]) -> int:
    """Pages one entity needs for these columns: its profile, codes page, capital's page."""
    sources = {source_of(kind, lang, t) for t in titles}
    return len(sources | ({PROFILE} if CAPITAL in sources else set()))


@dataclass(frozen=True)
class Ref:
    name: str = ""
    country: str = ""
    population: str = ""
    iata: str = ""


_CITY_POP = re.compile(r"^(?P<name>.+) \(population (?P<population>[\d,]+)\)$")
_QUALIFIED = re.compile(r"^(?P<name>.+) \((?P<q>[^()]+)\)$")
_IATA_ONLY = re.compile(r"^IATA code (?P<iata>[A-Z0-9]{3})$")


def parse_ref(kind: str, text: str) -> Ref:
    if kind == "city":
        match = _CITY_POP.match(text)
        if match:
            return Ref(name=match.group("name"), population=match.group("population"))
        match = _QUALIFIED.match(text)
        return Ref(name=match.group("name"), country=match.group("q")) if match else Ref(text)
    if kind == "airport":
        match = _IATA_ONLY.match(text)
        if match:
            return Ref(iata=match.group("iata"))
        match = _QUALIFIED.match(text)
        if match and re.fullmatch(r"[A-Z0-9]{3}", match.group("q")):
            return Ref(name=match.group("name"), iata=match.group("q"))
        if match:
            return Ref(name=match.group("name"), country=match.group("q"))
    return Ref(text)


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _in_section(hit: SearchHit, section: str) -> bool:
    return f"world.wideseek.local/{section}/" in hit.url


def profile_query(kind: str, lang: str, ref: Ref) -> Want:
    """How to search for the entity's own page, and how to recognise it among the hits."""
    name = ref.name
    if kind == "country" and lang == "zh":
        return Want(f"{name}首都人口", lambda h: h.title == name and _in_section(h, "zh/country"))
    if kind == "country":
        return Want(
            f"{name} country capital population",
            lambda h: h.title == name and _in_section(h, "country") and h.url.count("/") == 4,
            f"{name} country",
        )
    if kind == "city" and ref.population:
        # A namesake city is told apart by the population the question gives.
        return Want(name, lambda h: _in_section(h, "city") and _has_population(h, ref))
    if kind == "city":
        title = fold(f"{name}, {ref.country}")
        return Want(f"{name} {ref.country}", lambda h: fold(h.title) == title)
    if kind == "airport" and not name:
        return Want(
            f"{ref.iata} airport IATA code",
            lambda h: _in_section(h, "airport") and h.title.endswith(f"({ref.iata})"),
        )
    if kind == "airport":
        return Want(name, lambda h: _in_section(h, "airport") and _is_airport(h, ref))
    if kind == "us_state":
        return Want(f"{name} state", lambda h: h.title == name and _in_section(h, "us-state"))
    return Want(name, lambda h: h.title == name and _in_section(h, kind))


def _has_population(hit: SearchHit, ref: Ref) -> bool:
    numbers = {_digits(v) for v in re.findall(r"[\d,]{3,}", hit.snippet)}
    return fold(hit.title).startswith(fold(ref.name)) and _digits(ref.population) in numbers


def _is_airport(hit: SearchHit, ref: Ref) -> bool:
    """Airport names repeat across countries (two "Simon Bolivar International Airport"s):
    the code or the country the snippet names settles which one is meant."""
    if ref.iata:
        return hit.title == f"{ref.name} ({ref.iata})"
    if not hit.title.startswith(f"{ref.name} ("):
        return False
    return not ref.country or read_attr("airport", "country", hit.snippet) == ref.country


def codes_query(name: str) -> Want:
    title = f"Country codes of {name}"
    return Want(f"{name} ISO codes calling code domain", lambda h: h.title == title, title)


def _page_kind(kind: str, lang: str, source: str) -> str:
    if source == CODES:
        return "country_codes"
    if source == CAPITAL:
        return "city"
    return "country_zh" if (kind, lang) == ("country", "zh") else kind


def lookup(
    kind: str, lang: str, ref_text: str, titles: Sequence[str], capacity: int
) -> Steps[dict[str, str | None] | None]:
    ref = parse_ref(kind, ref_text)
    sources = {source_of(kind, lang, t) for t in titles}
    pages = yield from _source_pages(kind, lang, ref, sources, capacity)
    if pages[PROFILE] is None:
        return None
    values = {title: _read(kind, lang, title, pages) for title in titles}
    if lang == "zh":
        yield from _fill_from_english(values, pages[PROFILE], capacity)
    return values


def _source_pages(
    kind: str, lang: str, ref: Ref, sources: set[str], capacity: int
) -> Steps[dict[str, Page | None]]:
    """The entity's profile, and its codes page and capital's page when columns need them."""
    wanted = [profile_query(kind, lang, ref)]
    if CODES in sources:
        wanted.append(codes_query(ref.name))
    found = yield from find_pages(wanted, capacity, lazy=True)
    pages = {PROFILE: found[0], CODES: found[1] if len(found) > 1 else None, CAPITAL: None}
    profile = pages[PROFILE]
    if CAPITAL in sources and profile is not None:
        capital = read_attr(_page_kind(kind, lang, PROFILE), "capital", profile.text)
        if capital:
            city = profile_query("city", "en", Ref(name=capital, country=profile.title))
            (pages[CAPITAL],) = yield from find_pages([city], capacity)
    return pages


def _read(kind: str, lang: str, title: str, pages: dict[str, Page | None]) -> str | None:
    source = source_of(kind, lang, title)
    page = pages.get(source)
    attr = ATTRIBUTES[(kind, lang)].get(title)
    if page is None or attr is None:
        return None
    if attr == "url":
        return page.url
    return read_attr(_page_kind(kind, lang, source), attr, page.text)


def _fill_from_english(values: dict[str, str | None], profile: Page, capacity: int) -> Steps[None]:
    """Facts a Chinese profile leaves out, read on the English pages of the same country."""
    gaps = [t for t, v in values.items() if v is None and t in ENGLISH_TITLE]
    name_en = read_attr("country_zh", "name_en", profile.text)
    if not gaps or not name_en:
        return
    english = yield from lookup(
        "country", "en", name_en, [ENGLISH_TITLE[t] for t in gaps], capacity
    )
    for title in gaps:
        values[title] = (english or {}).get(ENGLISH_TITLE[title])
