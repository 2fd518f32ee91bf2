"""Read facts back from the text of the world's pages: one table of wordings per attribute.

Contract: `read_attr(page_kind, attr, text)` returns the value a page states for `attr`, as
written there (thousands separators dropped, lists re-joined with ", "), or None when the page
does not state it. `page_kind` is the kind of page the text came from: "country" (English
profile), "country_codes", "country_zh" (Chinese profile), "city", "airport", "element",
"us_state". `read_list_items(text)` gives the "- item" lines of a list page;
`split_names(value, lang)` splits a joined list of names ("A, B and C", "甲、乙、丙").

The patterns mirror the sentence templates of `world/pages.py` (every variant, English and
Chinese), so a change of wording there needs a row here; `tests/test_world_oracle.py` reads every
page kind of the shipped world to catch that. This module knows nothing about tasks, tools or
agents: it is what an attentive reader of one page can say, nothing more.
"""

from __future__ import annotations

import re

_NUM = r"(?P<v>-?\d[\d,]*(?:\.\d+)?)"
_END = r"(?=\.(?:\s|$))"  # a sentence end: a period followed by a space or the end of text
# A proper name up to the end of its sentence; "St." may open it (St. John's, St. George's).
_NAME = r"(?P<v>(?:St\. )?[^.]+?)" + _END
_CODE3 = r"(?P<v>[A-Z]{3})"
_SENTENCE_START = r"(?:^|(?<=\.\s))"

# (page kind, attribute) -> wordings, each with one group `v` holding the value.
PATTERNS: dict[tuple[str, str], tuple[str, ...]] = {
    ("country", "capital"): (
        rf"Its capital is {_NAME}",
        rf"The capital city of .+? is {_NAME}",
        rf"{_SENTENCE_START}(?P<v>(?:St\. )?[^.]+?) serves as the capital\.",
    ),
    ("country", "population"): (
        rf"The population is {_NUM}\.",
        rf"has a population of about {_NUM} people",
        rf"Population: {_NUM}\.",
    ),
    ("country", "area_km2"): (
        rf"covers an area of {_NUM} km²",
        rf"Total area: {_NUM} square kilometres",
    ),
    ("country", "currency"): (
        r"The currency is the (?P<v>.+?) \([A-Z]{3}\)\.",
        r"uses the (?P<v>.+?), code [A-Z]{3}\.",
        r"Official currency: (?P<v>.+?) \([A-Z]{3}\)\.",
    ),
    ("country", "currency_code"): (
        rf"The currency is the .+? \({_CODE3}\)\.",
        rf"uses the .+?, code {_CODE3}\.",
        rf"Official currency: .+? \({_CODE3}\)\.",
    ),
    ("country", "languages"): (rf"Languages spoken include (?P<v>.+?){_END}",),
    ("country", "neighbours"): (
        rf"It borders (?P<v>.+?){_END}",
        rf"Neighbouring countries: (?P<v>.+?){_END}",
    ),
    ("country_codes", "iso2"): (r"alpha-2 (?:code )?(?P<v>[A-Z]{2})\b",),
    ("country_codes", "iso3"): (r"alpha-3 (?:code )?(?P<v>[A-Z]{3})\b",),
    ("country_codes", "calling_code"): (
        r"calling code is (?P<v>\+[\d-]+)",
        r"from abroad, dial (?P<v>\+[\d-]+)",
    ),
    ("country_codes", "tld"): (
        r"top-level domain is (?P<v>\.\S+?)" + _END,
        r"often use the (?P<v>\.\S+) domain",
    ),
    ("country_zh", "name_en"): (r"（(?P<v>[^）]+)）是位于", r"英文名(?P<v>[^。]+)。"),
    ("country_zh", "capital"): (r"首都为(?P<v>[^。]+)。",),
    ("country_zh", "population"): (r"人口约(?P<v>\d+)人", r"总人口为(?P<v>\d+)。"),
    ("country_zh", "area_km2"): (r"面积为(?P<v>\d+(?:\.\d+)?)平方公里",),
    ("country_zh", "currency"): (
        r"通用货币为(?P<v>[^。]+?)（[A-Z]{3}）",
        r"法定货币：(?P<v>[^。]+?)，代码",
    ),
    ("country_zh", "currency_code"): (
        r"通用货币为[^。]+?（(?P<v>[A-Z]{3})）",
        r"，代码(?P<v>[A-Z]{3})。",
    ),
    ("country_zh", "iso2"): (r"二位代码为(?P<v>[A-Z]{2})",),
    ("country_zh", "iso3"): (r"三位代码为(?P<v>[A-Z]{3})",),
    ("country_zh", "calling_code"): (r"(?:国际电话区号为|国际长途区号：)(?P<v>\+[\d-]+)",),
    ("country_zh", "tld"): (r"国家顶级域名为(?P<v>\.[^。]+)。",),
    ("country_zh", "neighbours"): (r"邻国有(?P<v>[^。]+)。",),
    ("city", "country"): (
        rf"is a city in (?P<v>.+?){_END}",
        rf"is an urban centre of (?P<v>.+?){_END}",
        rf"lies in (?P<v>.+?){_END}",
    ),
    ("city", "population"): (
        rf"It has a population of {_NUM}\.",
        rf"Population: {_NUM} inhabitants",
        rf"About {_NUM} people live there",
    ),
    ("city", "latitude"): (
        r"latitude (?P<v>-?\d+(?:\.\d+)?), longitude",
        r"(?P<v>-?\d+(?:\.\d+)?)° latitude",
    ),
    ("city", "longitude"): (
        r", longitude (?P<v>-?\d+(?:\.\d+)?)\.",
        r"latitude, (?P<v>-?\d+(?:\.\d+)?)° longitude",
    ),
    ("city", "timezone"): (r"Time zone: (?P<v>\S+?)" + _END, r"follows the (?P<v>\S+) zone"),
    # An airport page names "<city>, <country>" or "<city> in <country>"; cities may hold a
    # comma ("Bandung, Java Island"), country names almost never do, so the last comma splits.
    ("airport", "city"): (
        rf"is an airport serving (?P<v>.+), [^,]+?{_END}",
        r"is located near (?P<v>.+) in [^.]+?\.",
    ),
    ("airport", "country"): (
        rf"is an airport serving .+, (?P<v>[^,]+?){_END}",
        rf"is located near .+ in (?P<v>[^.]+?){_END}",
    ),
    ("airport", "iata"): (r"IATA code:? (?P<v>[A-Z0-9]{3})\b",),
    # The airport package has a few placeholder codes such as "_BFY".
    ("airport", "icao"): (r"ICAO code:? (?P<v>[A-Z0-9_]{3,4})\b",),
    ("airport", "elevation_ft"): (rf"Elevation: {_NUM} ft", rf"elevation of {_NUM} feet"),
    ("airport", "timezone"): (r"Time zone: (?P<v>\S+?)" + _END,),
    ("element", "symbol"): (
        r"with symbol (?P<v>[A-Z][a-z]{0,2})\b",
        r"\(symbol (?P<v>[A-Z][a-z]{0,2})\)",
    ),
    ("element", "number"): (r"atomic number (?P<v>\d+)",),
    ("element", "mass"): (
        r"standard atomic mass is (?P<v>\d+(?:\.\d+)?)",
        r"Atomic mass: (?P<v>\d+(?:\.\d+)?) u",
    ),
    ("element", "density"): (
        r"Density: (?P<v>\d+(?:\.\d+)?) g/cm³",
        r"density of (?P<v>\d+(?:\.\d+)?) grams",
    ),
    ("us_state", "abbr"): (
        r"abbreviated (?P<v>[A-Z]{2})\b",
        r"\((?P<v>[A-Z]{2})\) is one of the 50",
    ),
    ("us_state", "capital"): (rf"Its capital is {_NAME}", rf"The state capital is {_NAME}"),
    ("us_state", "statehood_year"): (
        r"admitted to the Union in (?P<v>\d{4})",
        r"Statehood year: (?P<v>\d{4})",
    ),
    ("us_state", "fips"): (r"FIPS state code: (?P<v>\d+)",),
    ("us_state", "capital_tz"): (r"observes the (?P<v>\S+) time zone",),
}
_COMPILED = {key: [re.compile(p) for p in pats] for key, pats in PATTERNS.items()}
_NUMERIC = {"population", "area_km2", "elevation_ft"}
_LISTS = {"languages"}


def read_attr(page_kind: str, attr: str, text: str) -> str | None:
    for pattern in _COMPILED.get((page_kind, attr), ()):
        match = pattern.search(text)
        if match:
            value = match.group("v").strip()
            if attr in _NUMERIC:
                value = value.replace(",", "")
            if attr in _LISTS:
                value = ", ".join(split_names(value, "en"))
            return value
    return None


def split_names(value: str, lang: str) -> list[str]:
    """Items of "A, B and C" (en) or "甲、乙、丙" (zh). An English name that itself holds
    " and " (Bosnia and Herzegovina) makes the last split ambiguous; see `and_splits`."""
    if lang == "zh":
        return [v.strip() for v in value.split("、") if v.strip()]
    head, sep, last = value.rpartition(", ")
    items = head.split(", ") if sep else []
    tail = last.rsplit(" and ", 1)
    return [v.strip() for v in [*items, *tail] if v.strip()]


def and_splits(value: str) -> list[list[str]]:
    """Every way to read an English "A, B and C" list when names may contain " and ".

    Items before the last comma are whole names; the last segment holds the final two names
    joined by one of its " and "s, so it has one reading per " and " it contains.
    """
    head, sep, last = value.rpartition(", ")
    items = head.split(", ") if sep else []
    parts = last.split(" and ")
    if len(parts) == 1:
        return [[*items, last]]
    return [
        [*items, " and ".join(parts[:k]), " and ".join(parts[k:])] for k in range(1, len(parts))
    ]


def read_list_items(text: str) -> list[str]:
    """The "- item" lines of a list page, in page order."""
    return [line[2:].strip() for line in text.splitlines() if line.startswith("- ")]
