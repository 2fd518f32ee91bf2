"""Every sentence the world's pages are written in: one table that writer and reader share.

Contract: `WORDINGS[page_kind][sentence]` is the tuple of wordings one sentence of a page may
take, each a `str.format` template whose named fields are the facts the sentence states
(`{population:,}` writes thousands separators). `write(rng, page_kind, sentence, fields)`
writes one sentence in a wording drawn with the page's `rng`; a sentence of a single wording
draws nothing, so giving a sentence a second wording changes the draws of the sentences after
it (and the world's bytes).

A field is named after the attribute a reader asks for (`oracle/page_facts.py` turns every
wording into a pattern with one group per field), and its value is the fact as the page states
it: a country's name rather than its key, a calling code with its "+", a list already joined.
Page kinds: "country" (English profile), "country_codes", "country_zh" (Chinese profile),
"country_currency_history", "city", "airport", "element", "us_state", and "list" for the
opening line of a list page.

This module knows wordings only: not which sentences a page holds (`world/pages.py`) nor how
a value is recognised in running text (`oracle/page_facts.py`).
"""

from __future__ import annotations

import random
from collections.abc import Mapping

Wordings = tuple[str, ...]

WORDINGS: dict[str, dict[str, Wordings]] = {
    "country": {
        "intro": (
            "{name} is a country in {continent}.",
            "{name} is a sovereign state located in {continent}.",
            "Located in {continent}, {name} is one of the world's countries.",
        ),
        "capital": (
            "Its capital is {capital}.",
            "The capital city of {name} is {capital}.",
            "{capital} serves as the capital.",
        ),
        "no_capital": ("{name} has no official capital city.",),
        "population": (
            "The population is {population:,}.",
            "{name} has a population of about {population:,} people.",
            "Population: {population}.",
        ),
        "area": (
            "It covers an area of {area_km2:,} km².",
            "Total area: {area_km2:,} square kilometres.",
        ),
        "currency": (
            "The currency is the {currency} ({currency_code}).",
            "{name} uses the {currency}, code {currency_code}.",
            "Official currency: {currency} ({currency_code}).",
        ),
        "languages": ("Languages spoken include {languages}.",),
        "neighbours": (
            "It borders {neighbours}.",
            "Neighbouring countries: {neighbours}.",
        ),
        "no_neighbours": ("{name} has no land borders.", "It shares no land border."),
        "codes_page": (
            "ISO codes, dialling code and internet domain: see Country codes of {name}.",
            "For its codes, see the page Country codes of {name}.",
        ),
    },
    "country_codes": {
        "iso": (
            "{name} has the ISO 3166-1 alpha-2 code {iso2} and alpha-3 code {iso3}.",
            "ISO 3166 codes for {name}: alpha-2 {iso2}, alpha-3 {iso3}.",
        ),
        "calling_code": (
            "The international calling code is {calling_code}.",
            "To phone {name} from abroad, dial {calling_code}.",
        ),
        "tld": (
            "Its internet country code top-level domain is {tld}.",
            "Websites in {name} often use the {tld} domain.",
        ),
    },
    "country_currency_history": {
        "title": ("Currency history of {name}.",),
        "former_currency": (
            "From {start} to {end}, {name} used the {currency} ({currency_code}).",
            "The {currency} ({currency_code}) was legal tender in {name} "
            "between {start} and {end}.",
        ),
    },
    "country_zh": {
        "intro": (
            "{name}（{name_en}）是位于{continent}的国家。",
            "{name}是{continent}的一个国家，英文名{name_en}。",
        ),
        "capital": ("首都为{capital}。",),
        "population": ("人口约{population}人。", "总人口为{population}。"),
        "area": ("面积为{area_km2}平方公里。",),
        "currency": (
            "通用货币为{currency}（{currency_code}）。",
            "法定货币：{currency}，代码{currency_code}。",
        ),
        "iso": ("ISO 3166-1 二位代码为{iso2}，三位代码为{iso3}。",),
        "calling_code": ("国际电话区号为{calling_code}。", "国际长途区号：{calling_code}。"),
        "tld": ("国家顶级域名为{tld}。",),
        "neighbours": ("邻国有{neighbours}。",),
        "no_neighbours": ("该国没有陆地邻国。",),
    },
    "city": {
        "intro": (
            "{name} is a city in {country}.",
            "{name} is an urban centre of {country}.",
            "The city of {name} lies in {country}.",
        ),
        "population": (
            "It has a population of {population:,}.",
            "Population: {population} inhabitants.",
            "About {population:,} people live there.",
        ),
        "coordinates": (
            "Coordinates: latitude {latitude}, longitude {longitude}.",
            "It lies at {latitude}° latitude, {longitude}° longitude (decimal degrees).",
        ),
        "timezone": ("Time zone: {timezone}.", "Local time follows the {timezone} zone."),
    },
    "airport": {
        "intro": (
            "{name} is an airport serving {city}, {country}.",
            "{name} is located near {city} in {country}.",
        ),
        "codes": (
            "IATA code: {iata}. ICAO code: {icao}.",
            "It has the IATA code {iata} and the ICAO code {icao}.",
        ),
        "elevation": (
            "Elevation: {elevation_ft} ft above sea level.",
            "The airfield sits at an elevation of {elevation_ft} feet.",
        ),
        "timezone": ("Time zone: {timezone}.",),
    },
    "element": {
        "intro": (
            "{name} is a chemical element with symbol {symbol} and atomic number {number}.",
            "{name} (symbol {symbol}) has atomic number {number}.",
        ),
        "mass": ("Its standard atomic mass is {mass}.", "Atomic mass: {mass} u."),
        "density": (
            "Density: {density} g/cm³.",
            "It has a density of {density} grams per cubic centimetre.",
        ),
        "no_density": ("Its density has not been measured.",),
    },
    "us_state": {
        "intro": (
            "{name} is a state of the United States, abbreviated {abbr}.",
            "{name} ({abbr}) is one of the 50 U.S. states.",
        ),
        "capital": ("Its capital is {capital}.", "The state capital is {capital}."),
        "statehood": (
            "{name} was admitted to the Union in {statehood_year}.",
            "Statehood year: {statehood_year}.",
        ),
        "fips": ("FIPS state code: {fips}.",),
        "capital_tz": ("The capital observes the {capital_tz} time zone.",),
    },
    "list": {
        "currency_users": (
            "The {currency} (ISO 4217 code {code}) is the currency of the following countries:",
            "Countries and territories that use the {currency} ({code}):",
        ),
        "currency_users_zh": ("{currency}（ISO 4217代码{code}）是以下国家或地区的货币：",),
        "continent": (
            "Countries in {continent}, in alphabetical order:",
            "The sovereign states and territories of {continent}:",
        ),
        "continent_zh": ("{continent}的国家和地区（按英文名排序）：",),
        "largest_cities": (
            "Cities of {country} ranked by population, largest first:",
            "The most populous cities in {country}, in descending order of population:",
        ),
        "international_airports": ("International airports located in {country}:",),
        "elements": (
            "The chemical elements with atomic numbers {lo} to {hi}, in order, each with its "
            "atomic number:",
        ),
        "us_states": (
            "The fifty states in the order they joined the Union, each with its year of admission:",
        ),
    },
}


def write(rng: random.Random, page_kind: str, sentence: str, fields: Mapping[str, object]) -> str:
    """`sentence` of a `page_kind` page in one of its wordings, stating `fields`; a sentence of
    a single wording is written without a draw."""
    wordings = WORDINGS[page_kind][sentence]
    wording = wordings[0] if len(wordings) == 1 else rng.choice(wordings)
    return wording.format(**fields)
