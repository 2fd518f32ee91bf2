"""Find which entities a wide question is about: the names of its rows, read from pages.

Contract. `list_members(subject, capacity)` is a step routine (see `oracle.steps`) returning
`Members`: the member names of a `Subject` in page order, as the pages write them (empty when it
cannot find them), and where the names were cut out of a longer list, a note saying how (the
first and last name of the cut, with their numbers). The subagent thinks the note before it
reports. The lists of elements and states show the number they are ordered by before each
name (atomic numbers, years of admission), so a cut is a copy between two numbers, not
counting: the shipped model's listers were right on 6 of 17 test tasks when the pages gave
names only. The note names each end number first ("from 32: Germanium"), as the page does,
so the name is what follows the number the question gives: with names first ("Germanium
(32)") a model trained on 250 such cuts wrote the same two ends whatever the question asked,
and LoRAs trained on 1,200 synthetic cuts found both ends of new lists' cuts 62% of the time
names first, 72% numbers first, the first end 65% against 82% (bench/keyed_cut_probe.py).

One strategy per family of `world/families.py`, each the way a careful person would use a
search engine over the world's pages:

- list families: search the list page by its title, open every part that is needed, read the
  "- item" lines (ranked lists: the first N, said before the report; element blocks: the
  names whose atomic number, shown before each, is in the range; alphabetical continent
  parts: the run between the two names the question gives);
- neighbours: open the country's profile and read its neighbour sentence; an English name that
  itself holds " and " makes that sentence ambiguous, settled by searching the longer name;
- states admitted in a span of years: the list by admission order, which shows each state's
  year, cut to the span;
- Chinese continent parts: the Chinese list is sorted by English name, and misses the few
  members without a Chinese name, so it is aligned with the English list, checking the
  English names of the candidates at each end on their Chinese pages.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from wideseek.tools.base import SearchHit
from wideseek.world.oracle.lookup import Ref, profile_query
from wideseek.world.oracle.page_facts import (
    and_splits,
    keyed_item,
    read_attr,
    read_list_items,
    split_names,
)
from wideseek.world.oracle.steps import (
    WIDE_COUNT,
    Steps,
    Want,
    find_hits,
    find_pages,
    open_pages,
    run_calls,
)
from wideseek.world.oracle.steps import search as search_call
from wideseek.world.oracle.text import Subject, parse_hits

PART_SIZE = 15  # names per list part, as the pages show (part k holds items 15k-14..15k)
_EN_PART = r"^{t} \(part (?P<k>\d+) of (?P<n>\d+)\)$"
_ZH_PART = r"^{t}（第(?P<k>\d+)/(?P<n>\d+)部分）$"
_CONTINENT = re.compile(
    r"is a (?:country|sovereign state located) in (?P<v>[^.]+)\.|Located in (?P<w>[^,]+), "
)


@dataclass(frozen=True)
class Members:
    names: list[str]
    note: str = ""  # how the names were cut out of a longer list; "" for a whole list


def list_members(subject: Subject, capacity: int) -> Steps[Members]:
    p, lang = subject.params, subject.lang
    family = subject.family
    if family == "neighbours":
        return Members((yield from _neighbours(p["country"], lang, capacity)))
    if family == "continent_part" and lang == "zh":
        return (yield from _continent_part_zh(p, capacity))
    if family == "continent_part":
        items = yield from read_list(f"Countries of {p['continent']}", None, "en", None, capacity)
        return _between(items, p["first"], p["last"])
    if family == "currency_users":
        query = (
            f"{p['currency']}（{p['code']}）" if lang == "zh" else f"{p['currency']} ({p['code']})"
        )
        return Members((yield from read_list(p["currency"], query, lang, None, capacity)))
    if family == "largest_cities":
        n = int(p["n"])
        title = f"Largest cities of {p['country']}"
        items = yield from read_list(title, None, "en", math.ceil(n / PART_SIZE), capacity)
        # a ranking is cut too: the pages' parts hold 15 names, and a lister that copied
        # whole parts gave 15 cities for 9
        return Members(items[:n], f"The first {n} of the ranking." if items else "")
    if family == "intl_airports":
        title = f"International airports in {p['country']}"
        return Members((yield from read_list(title, None, "en", None, capacity)))
    if family == "element_range":
        return (yield from _element_range(int(p["lo"]), int(p["hi"]), capacity))
    if family == "states_admitted":
        return (yield from _states_admitted(p["y1"], p["y2"], capacity))
    return Members([])


def _cut_note(first: str, last: str, lang: str) -> str:
    return f"从{first}到{last}。" if lang == "zh" else f"From {first} to {last} in the list."


def read_list(
    title: str, query: str | None, lang: str, parts_needed: int | None, capacity: int
) -> Steps[list[str]]:
    """The items of a (possibly multi-part) list page titled `title`, parts in order.

    `parts_needed` None means every part. Parts missing from the first results are searched
    by their own titles."""
    part_re = re.compile((_ZH_PART if lang == "zh" else _EN_PART).format(t=re.escape(title)))

    def part_of(hit: SearchHit) -> tuple[int, int] | None:
        if hit.title == title:
            return 1, 1
        match = part_re.match(hit.title)
        return (int(match.group("k")), int(match.group("n"))) if match else None

    query = query or title
    texts = yield from run_calls([search_call(query)], capacity)
    if not any(part_of(h) for h in parse_hits(texts[0])):
        texts = yield from run_calls([search_call(query, WIDE_COUNT)], capacity)
    urls: dict[int, str] = {}
    total = 0
    for hit in parse_hits(texts[0]):
        part = part_of(hit)
        if part:
            urls.setdefault(part[0], hit.url)
            total = part[1]
    if not urls:
        return []
    wanted = list(range(1, min(parts_needed or total, total) + 1))
    missing = [k for k in wanted if k not in urls]
    if missing:
        part_title = "{t}（第{k}/{n}部分）" if lang == "zh" else "{t} (part {k} of {n})"
        queries = [part_title.format(t=title, k=k, n=total) for k in missing]
        hits = yield from find_hits(
            [Want(q, lambda h, q=q: h.title == q) for q in queries], capacity
        )
        for k, hit in zip(missing, hits, strict=True):
            if hit is not None:
                urls[k] = hit.url
    pages = yield from open_pages([urls.get(k) for k in wanted], capacity)
    return [item for page in pages if page for item in read_list_items(page.text)]


def _between(items: Sequence[str], first: str, last: str) -> Members:
    if first not in items or last not in items:
        return Members([])
    cut = items[items.index(first) : items.index(last) + 1]
    return Members(list(cut), _cut_note(first, last, "en"))


def _neighbours(country: str, lang: str, capacity: int) -> Steps[list[str]]:
    (page,) = yield from find_pages([profile_query("country", lang, Ref(country))], capacity)
    if page is None:
        return []
    kind = "country_zh" if lang == "zh" else "country"
    joined = read_attr(kind, "neighbours", page.text)
    if not joined:
        return []
    if lang == "zh":
        return split_names(joined, "zh")
    readings = and_splits(joined)
    if len(readings) == 1:
        return readings[0]
    # Names holding " and " that not every reading shares: does a country of that name exist?
    doubtful = sorted(
        {n for r in readings for n in r if " and " in n}
        - set.intersection(*({n for n in r if " and " in n} for r in readings))
    )
    queries = [profile_query("country", "en", Ref(n)) for n in doubtful]
    hits = yield from find_hits(queries, capacity)
    exists = {n for n, hit in zip(doubtful, hits, strict=True) if hit is not None}
    for reading in readings:
        if all(n in exists for n in reading if n in doubtful):
            return reading
    return readings[0]


def _element_range(lo: int, hi: int, capacity: int) -> Steps[Members]:
    """Elements lo..hi from the lists of ten ("Chemical elements 61–70"), each name with its
    atomic number."""
    starts = list(range((lo - 1) // 10 * 10 + 1, hi + 1, 10))
    wanted = [
        Want(
            f"Chemical elements {s} to {s + 9}",
            lambda h, s=s: h.title.startswith(f"Chemical elements {s}–"),
        )
        for s in starts
    ]
    pages = yield from find_pages(wanted, capacity)
    if any(page is None for page in pages):
        return Members([])
    items = [item for page in pages if page for item in read_list_items(page.text)]
    return _keyed_span(items, lo, hi, f"Atomic numbers {lo} to {hi}")


def _states_admitted(y1: str, y2: str, capacity: int) -> Steps[Members]:
    """The list by admission order shows each state's year: the span is read off it."""
    items = yield from read_list("U.S. states by date of admission", None, "en", None, capacity)
    return _keyed_span(items, int(y1), int(y2), f"Admitted {y1} to {y2}")


def _keyed_span(items: Sequence[str], lo: int, hi: int, asked: str) -> Members:
    """The names of a list's items whose number (an atomic number, a year) is within lo..hi;
    the note names the first and the last after their numbers, as the page writes them."""
    keyed = [k for k in map(keyed_item, items) if k]
    span = [(name, key) for name, key in keyed if lo <= key <= hi]
    if not span:
        return Members([])
    (first, a), (last, b) = span[0], span[-1]
    return Members([name for name, _ in span], f"{asked}: from {a}: {first} to {b}: {last}.")


def _continent_part_zh(p: dict[str, str], capacity: int) -> Steps[Members]:
    # 1) the English list (its continent read off the first name's profile) and the Chinese one
    (profile,) = yield from find_pages([profile_query("country", "en", Ref(p["first"]))], capacity)
    match = _CONTINENT.search(profile.text) if profile else None
    if match is None:
        return Members([])
    continent = match.group("v") or match.group("w")
    english = yield from read_list(f"Countries of {continent}", None, "en", None, capacity)
    chinese = yield from read_list(f"{p['continent']}国家列表", None, "zh", None, capacity)
    if p["first"] not in english or p["last"] not in english:
        return Members([])
    # 2) the Chinese list lacks `gap` names, so each end sits up to `gap` places earlier
    gap = len(english) - len(chinese)
    ends = []
    for name in (p["first"], p["last"]):
        i = english.index(name)
        candidates = [k for k in range(i, i - gap - 1, -1) if 0 <= k < len(chinese)]
        if len(candidates) == 1:
            ends.append(candidates[0])
            continue
        queries = [profile_query("country", "zh", Ref(chinese[k])) for k in candidates]
        hits = yield from find_hits(queries, capacity)
        named = [k for k, h in zip(candidates, hits, strict=True) if h and _names(h, name)]
        if not named:
            return Members([])
        ends.append(named[0])
    first, last = chinese[ends[0]], chinese[ends[1]]
    return Members(chinese[ends[0] : ends[1] + 1], _cut_note(first, last, "zh"))


def _names(hit: SearchHit, english: str) -> bool:
    """Does a Chinese profile hit say its English name is `english`?"""
    return read_attr("country_zh", "name_en", hit.snippet) == english
