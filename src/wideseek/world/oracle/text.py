"""The oracle's fixed phrasings: what it writes to itself between agents, and how it reads back.

Contract. Every text one oracle agent writes for another (a subtask, a report) is rendered here
and parsed back here, so the lead and its subagents agree on a small, regular language a small
model can learn:

- `Subject`: the entity set a wide question is about ("the 7 most populous cities of
  Morocco"), found in the question by the opener templates of `world/wide_tasks.py` and typed
  by the family patterns of `world/families.py` (their subject phrases, en and zh).
- `MemberSubtask` ("List <subject>. Give the names numbered, one per line.") and its report,
  the names numbered in order ("1. Casablanca", "2. Rabat", ...): the number of the line
  being written is where the list stands, so "the 9 most populous" stops after "9." without
  counting. A small model that wrote "Found 7:" first stopped at a number it had often seen
  (3 or 5); with the count last ("- name" lines, then "9 names.") it copied whole page parts
  (15 names for 9).
- `EntitySubtask` ("For each of these cities, find Latitude, Time Zone: Casablanca (Morocco);
  Rabat (Morocco).", zh "查找以下国家的人口、货币代码：中国；印度。") and its report, one line
  per entity: "Casablanca (Morocco) — Latitude: 33.5883; Time Zone: Africa/Casablanca".
- `parse_hits` / `parse_page`: the search and access tool texts of `tools/search_tools.py`,
  read back into the tools' own records (`SearchHit`, `Page`).

It knows nothing about engines, policies or where pages come from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from wideseek.tools.base import Page, SearchHit
from wideseek.world.wide_tasks import EN_OPENERS, ZH_OPENERS

NOT_FOUND = "not found"

# -- subjects --------------------------------------------------------------------------------

_OPENERS = [
    re.compile("^" + re.escape(o).replace(re.escape("{subject}"), "(?P<s>.+)") + "$", re.I)
    for o in (*EN_OPENERS, *ZH_OPENERS)
]
_FAMILY_PATTERNS: tuple[tuple[str, str, str], ...] = (
    ("neighbours", "en", r"the countries that share a land border with (?P<country>.+)"),
    (
        "continent_part",
        "en",
        r"the countries and territories of (?P<continent>.+?) whose English names fall "
        r"alphabetically from (?P<first>.+?) to (?P<last>.+?) \(inclusive\)",
    ),
    (
        "currency_users",
        "en",
        r"every country or territory whose official currency is the (?P<currency>.+?) "
        r"\((?P<code>[A-Z]{3})\)",
    ),
    ("largest_cities", "en", r"the (?P<n>\d+) most populous cities of (?P<country>.+)"),
    (
        "intl_airports",
        "en",
        r"all international airports in (?P<country>.+?) \(airports with “International” in "
        r"their name\)",
    ),
    (
        "element_range",
        "en",
        r"the chemical elements with atomic numbers (?P<lo>\d+) to (?P<hi>\d+)",
    ),
    (
        "states_admitted",
        "en",
        r"the U\.S\. states admitted to the Union from (?P<y1>\d{4}) to (?P<y2>\d{4}) "
        r"\(inclusive\)",
    ),
    ("neighbours", "zh", r"与(?P<country>.+)陆地接壤的所有国家"),
    (
        "continent_part",
        "zh",
        r"(?P<continent>.+?)英文名称按字母顺序从(?P<first>.+?)到(?P<last>.+?)（含）的国家和地区",
    ),
    (
        "currency_users",
        "zh",
        r"以(?P<currency>.+?)（(?P<code>[A-Z]{3})）为法定货币的所有国家和地区",
    ),
)
_FAMILIES = [(f, lang, re.compile(p)) for f, lang, p in _FAMILY_PATTERNS]


@dataclass(frozen=True)
class Subject:
    family: str
    lang: str
    text: str  # the phrase as the question writes it
    params: dict[str, str] = field(default_factory=dict)


def parse_subject(text: str) -> Subject | None:
    for family, lang, pattern in _FAMILIES:
        match = pattern.fullmatch(text)
        if match:
            return Subject(family, lang, text, match.groupdict())
    return None


def question_subject(question: str) -> Subject | None:
    """The subject of a wide question: its first line with the opener stripped."""
    first = question.split("\n", 1)[0].strip()
    for opener in _OPENERS:
        match = opener.match(first)
        if match:
            found = parse_subject(match.group("s"))
            if found is not None:
                return found
    return None


# -- member subtasks -------------------------------------------------------------------------

_MEMBER = {
    "en": "List {subject}. Give the names numbered, one per line.",
    "zh": "列出{subject}，每行一个名称，按顺序编号。",
}
_NUMBERED = re.compile(r"^\d+\. (?P<name>.+)$")
_MEMBER_PARSE = [
    re.compile(r"^List (?P<s>.+)\. Give the names numbered, one per line\.$"),
    re.compile(r"^列出(?P<s>.+)，每行一个名称，按顺序编号。$"),
]


def member_subtask(subject: Subject) -> str:
    return _MEMBER[subject.lang].format(subject=subject.text)


def parse_member_subtask(text: str) -> Subject | None:
    for pattern in _MEMBER_PARSE:
        match = pattern.match(text.strip())
        if match:
            return parse_subject(match.group("s"))
    return None


def member_report(names: list[str], lang: str) -> str:
    if not names:
        return "未找到名单。" if lang == "zh" else "I could not find the list."
    return "\n".join(f"{i}. {name}" for i, name in enumerate(names, 1))


def report_names(text: str) -> list[str]:
    """The numbered lines of member reports (inside the lead's delegation result)."""
    found = (_NUMBERED.match(line.strip()) for line in text.splitlines())
    return [m.group("name").strip() for m in found if m]


# -- entity subtasks -------------------------------------------------------------------------

# Entity kind -> its plural in English subtasks. Chinese subtasks are about countries only.
PLURALS = {
    "country": "countries",
    "city": "cities",
    "airport": "airports",
    "element": "chemical elements",
    "us_state": "U.S. states",
}
_KIND_OF_PLURAL = {v: k for k, v in PLURALS.items()}
_EN_ENTITY = re.compile(
    r"^For each of these (?P<noun>[^,]+), find (?P<titles>.+?): (?P<refs>.+)\.$"
)
_ZH_ENTITY = re.compile(r"^查找以下国家的(?P<titles>.+?)：(?P<refs>.+)。$")


@dataclass(frozen=True)
class EntitySubtask:
    kind: str
    lang: str
    titles: tuple[str, ...]  # the facts to find, by column title
    refs: tuple[str, ...]  # how each entity is named ("Rabat (Morocco)", "IATA code SJC")

    def render(self) -> str:
        if self.lang == "zh":
            return f"查找以下国家的{'、'.join(self.titles)}：{'；'.join(self.refs)}。"
        return (
            f"For each of these {PLURALS[self.kind]}, find {', '.join(self.titles)}: "
            f"{'; '.join(self.refs)}."
        )


def parse_entity_subtask(text: str) -> EntitySubtask | None:
    text = text.strip()
    match = _ZH_ENTITY.match(text)
    if match:
        titles, refs = match.group("titles").split("、"), match.group("refs").split("；")
        return EntitySubtask("country", "zh", tuple(titles), tuple(refs))
    match = _EN_ENTITY.match(text)
    if match and match.group("noun") in _KIND_OF_PLURAL:
        return EntitySubtask(
            _KIND_OF_PLURAL[match.group("noun")],
            "en",
            tuple(match.group("titles").split(", ")),
            tuple(match.group("refs").split("; ")),
        )
    return None


def entity_line(ref: str, values: dict[str, str | None] | None) -> str:
    """One report line; `values` None means the entity's page was not found at all."""
    if values is None:
        return f"{ref} — page {NOT_FOUND}"
    cells = "; ".join(f"{title}: {value or NOT_FOUND}" for title, value in values.items())
    return f"{ref} — {cells}"


def parse_entity_lines(text: str) -> dict[str, dict[str, str]]:
    """ref -> {title: value} from report lines; values that were not found are left out."""
    out: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        if line.startswith("## ") or " — " not in line:
            continue
        ref, _, rest = line.partition(" — ")
        cells = out.setdefault(ref.strip(), {})
        for item in rest.split("; "):
            title, sep, value = item.partition(": ")
            if sep and value.strip() != NOT_FOUND:
                cells[title.strip()] = value.strip()
    return out


# -- tool results ----------------------------------------------------------------------------


_HIT = re.compile(r"^\[\d+\] (?P<title>.*)\nURL: (?P<url>\S+)\n", re.M)
_PAGE = re.compile(r"^## Page: (?P<url>\S+)\nTitle: (?P<title>.*)\n\n(?P<text>.*)\Z", re.S)
_CUT = re.compile(r"\n\[cut: \d+ of \d+ characters shown\]$")


def parse_hits(text: str) -> list[SearchHit]:
    """The hits of one `search` result text, in rank order."""
    matches = list(_HIT.finditer(text))
    hits = []
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        snippet = _CUT.sub("", text[match.end() : end].strip())
        hits.append(SearchHit(title=match.group("title"), url=match.group("url"), snippet=snippet))
    return hits


def parse_page(text: str) -> Page | None:
    """The page of one `access` result text; None for "not found" and error texts."""
    match = _PAGE.match(text)
    if not match:
        return None
    text = _CUT.sub("", match.group("text"))
    return Page(url=match.group("url"), title=match.group("title"), text=text)
