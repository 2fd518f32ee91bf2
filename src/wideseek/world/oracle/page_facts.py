"""Read facts back from the text of the world's pages, with patterns made from their wordings.

Contract: `read_attr(page_kind, attr, text)` returns the value a page states for `attr`, as
written there (thousands separators dropped, lists re-joined with ", "), or None when the page
does not state it. `page_kind` is the kind of page the text came from: "country" (English
profile), "country_codes", "country_zh" (Chinese profile), "city", "airport", "element",
"us_state". `read_list_items(text)` gives the "- item" lines of a list page,
`keyed_item(item)` the (name, number) of an item of a list that shows its order ("1845: Florida");
`split_names(value, lang)` splits a joined list of names ("A, B and C", "甲、乙、丙").

The pages are written from the wordings of `world/page_wordings.py`, and every wording there is
turned into a pattern here: its words as they stand, each field a named group shaped like the
value it holds (`SHAPES`), so a new wording is read as soon as it is written. This module knows
nothing about tasks, tools or agents: it is what an attentive reader of one page can say.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from string import Formatter

from wideseek.world.page_wordings import WORDINGS

_NUMBER = r"-?\d+(?:\.\d+)?"
_GROUPED_NUMBER = r"-?\d[\d,]*(?:\.\d+)?"  # written with thousands separators, "{:,}"
_CODE3 = r"[A-Z]{3}"
# What a field's value looks like, so a pattern knows where the value ends. A field not named
# here is any text up to the words that follow it (the shortest that lets the wording match).
SHAPES: dict[str, str] = {
    # A place name ends at the sentence's full stop; "St." may open it (St. John's).
    "capital": r"(?:St\. )?[^.]+?",
    # An airport serves "<city>, <country>": cities may hold a comma ("Bandung, Java Island"),
    # country names almost never do, so the last comma splits.
    "city": r".+",
    "name_en": r"[^（）。]+?",  # an English name inside a Chinese sentence
    "population": _NUMBER,
    "area_km2": _NUMBER,
    "elevation_ft": _NUMBER,
    "latitude": _NUMBER,
    "longitude": _NUMBER,
    "mass": _NUMBER,
    "density": _NUMBER,
    "number": _NUMBER,
    "statehood_year": _NUMBER,
    "fips": r"\d+",
    "iso2": r"[A-Z]{2}",
    "iso3": _CODE3,
    "currency_code": _CODE3,
    "calling_code": r"\+[\d-]+",
    "tld": r"\.\S+?",
    "iata": r"[A-Z0-9]{3}",
    "icao": r"[A-Z0-9_]{3,4}",  # the airport package has placeholder codes such as "_BFY"
    "symbol": r"[A-Z][a-z]{0,2}",
    "abbr": r"[A-Z]{2}",
    "timezone": r"\S+?",
    "capital_tz": r"\S+?",
}
_ANY = r".+?"
# A value that opens its sentence starts the text or follows a full stop.
_SENTENCE_START = r"(?:^|(?<=[.。]\s)|(?<=。))"
_SENTENCE_END = r"\.(?=\s|$)"  # a full stop followed by a space or the end of the text


@dataclass(frozen=True)
class SentencePattern:
    """One sentence of a wording as a pattern, with a named group per field."""

    pattern: re.Pattern[str]
    separated: frozenset[str]  # fields written with thousands separators

    def read(self, field: str, text: str) -> str | None:
        match = self.pattern.search(text)
        if match is None:
            return None
        value = match.group(field).strip()
        return value.replace(",", "") if field in self.separated else value


def wording_patterns(wording: str) -> list[SentencePattern]:
    """A pattern for each sentence of `wording` that states a field. A wording of two sentences
    ("IATA code: {iata}. ICAO code: {icao}.") is read sentence by sentence, the way search
    snippets cut text, so one of them alone is read too."""
    return [
        _sentence_pattern(tokens)
        for tokens in _sentences(wording)
        if any(field for _, field, _ in tokens)
    ]


_Token = tuple[str, str | None, str]  # literal text, the field after it (if any), its format


def _sentences(wording: str) -> list[list[_Token]]:
    """The wording's pieces, sentence by sentence. A sentence ends at a full stop and a space,
    where search snippets cut text too (inside "U.S. states" as well)."""
    sentences: list[list[_Token]] = [[]]
    for literal, field, spec, _ in Formatter().parse(wording):
        *ended, rest = re.split(r"(?<=\.) ", literal)
        for text in ended:
            sentences[-1].append((text, None, ""))
            sentences.append([])
        sentences[-1].append((rest, field, spec or ""))
    return sentences


def _sentence_pattern(tokens: list[_Token]) -> SentencePattern:
    opens_with_field = tokens[0][0] == "" and tokens[0][1] is not None
    parts = [_SENTENCE_START] if opens_with_field else []
    separated = set()
    for i, (literal, field, spec) in enumerate(tokens):
        if i == len(tokens) - 1 and field is None and literal.endswith("."):
            parts += [re.escape(literal[:-1]), _SENTENCE_END]
        else:
            parts.append(re.escape(literal))
        if field is None:
            continue
        if spec not in ("", ","):
            raise ValueError(f"field {field!r}: no reading for the format {spec!r}")
        if spec == ",":
            separated.add(field)
        shape = _GROUPED_NUMBER if spec == "," else SHAPES.get(field, _ANY)
        parts.append(f"(?P<{field}>{shape})")
    return SentencePattern(re.compile("".join(parts)), frozenset(separated))


def _patterns() -> dict[tuple[str, str], tuple[SentencePattern, ...]]:
    patterns: dict[tuple[str, str], list[SentencePattern]] = {}
    for kind, sentences in WORDINGS.items():
        for wordings in sentences.values():
            for wording in wordings:
                for pattern in wording_patterns(wording):
                    for field in pattern.pattern.groupindex:
                        patterns.setdefault((kind, field), []).append(pattern)
    return {key: tuple(found) for key, found in patterns.items()}


# (page kind, attribute) -> the patterns of every wording that states it, in table order.
PATTERNS = _patterns()
_LISTS = {"languages"}


def read_attr(page_kind: str, attr: str, text: str) -> str | None:
    for pattern in PATTERNS.get((page_kind, attr), ()):
        value = pattern.read(attr, text)
        if value is not None:
            return ", ".join(split_names(value, "en")) if attr in _LISTS else value
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


# number first since world 19c49a40; after the name in world a0fe5765 (still read: `--world`)
_KEYED_ITEM = (
    re.compile(r"^(?P<key>\d+): (?P<name>.+)$"),
    re.compile(r"^(?P<name>.+) \((?P<key>\d+)\)$"),
)


def keyed_item(item: str) -> tuple[str, int] | None:
    """An item of a list that shows what it is ordered by ("32: Germanium", "1845: Florida";
    "Germanium (32)" on world a0fe5765) as (name, number); None for an item without one."""
    match = _KEYED_ITEM[0].match(item) or _KEYED_ITEM[1].match(item)
    return (match.group("name"), int(match.group("key"))) if match else None
