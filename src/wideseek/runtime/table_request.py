"""A person's question → the table request the agents were trained to answer.

People ask "List the 5 most populous cities of Morocco with their population and latitude.";
every training question (and every WideSearch question) also names the table's columns and its
format ("Return one Markdown table with these columns: …"). `table_request(question, columns)`
states the columns: the ones given, else the ones read out of the question (`infer_columns`),
and returns the question with the format lines added, so the model sees the shape it was
trained on and the person sees, before any work starts, the columns the answer will have.

`infer_columns` reads English questions of the shapes "<list …> ENTITIES … with (their) A, B
and C" / "… and their A and B" / "… : A, B, C"; the key column is the listed entity noun in the
singular ("cities" → "City"). Other shapes and other languages give None: the question is then
passed as asked (columns are the model's choice) unless the caller names them. A question that
already names its columns ("… columns: …") is left alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from wideseek.world.wide_tasks import closing_line, table_instruction

# Where the listed entities end and the attributes begin, strongest marker first.
_ATTRIBUTE_MARKERS = (
    r"[?.]\s+(?:i\s+need|i\s+want|give\s+me|show\s+me|list|with|and)\s+"
    r"(?:their|its|the|each one's)\s+",
    r"\s+along with\s+(?:their|its|the|each one's)\s+",
    r"\s+with\s+(?:their|its|each one's|each|the)\s+",
    r",?\s+and\s+(?:their|its)\s+",
    r",?\s+including\s+(?:their|its|the)?\s*",
    r",?\s+giving\s+(?:their|its|the|each one's)?\s*",
    r"\s*:\s+",
    r"\s+with\s+",
)
# commas, "and", "&", ";" — outside parentheses ("density (g/cm³)" is one column)
_LIST_SPLIT = re.compile(r"\s*(?:,\s*and\s+|,\s*&\s*|,|;|\s+and\s+|\s*&\s*)\s*(?![^(]*\))")
# Words before the entity noun that are not part of it: request verbs, determiners, counts and
# ranking adjectives. The entity noun is the last word before a preposition or relative clause.
_LEAD_IN = re.compile(
    r"^(?:please\s+)?(?:(?:can|could|would)\s+you\s+)?"
    r"(?:list|name|show(?:\s+me)?|give\s+me|find|get|tell\s+me|make(?:\s+me)?|build|compile|"
    r"which\s+are|what\s+are|i\s+(?:need|want|would\s+like|'d\s+like)|compare)?\s*"
    r"(?:(?:a|one)\s+(?:markdown\s+)?(?:table|list|overview)\s+(?:of|with|for|about)\s+)?",
    re.IGNORECASE,
)
_SKIP_WORDS = {
    "the", "all", "every", "each", "some", "of", "top", "most", "least", "biggest", "largest",
    "smallest", "highest", "lowest", "populous", "busiest", "main", "major", "first", "last",
    "international", "official", "a", "an", "and", "their", "its",
}  # fmt: skip
# Words ending in "s" that are verbs or function words, not listed entities.
_NOT_PLURAL = {"does", "uses", "shares", "borders", "this", "these", "those", "has", "was", "plus"}
_CLAUSE = re.compile(
    r"\s+(?:of|in|on|from|that|which|who|whose|where|with|by|for|between|sharing|using|"
    r"bordering|to|at|within|near|around)\b",
    re.IGNORECASE,
)
_COLUMNS_NAMED = re.compile(r"\bcolumns?\b|列名|表头", re.IGNORECASE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


@dataclass(frozen=True)
class TableRequest:
    """The question the agents get, and the columns stated to the person (None: the model's)."""

    question: str
    columns: list[str] | None
    inferred: bool  # columns read from the question, not given


def _singular(word: str) -> str:
    lower = word.lower()
    if lower.endswith("ies") and len(lower) > 4:
        return word[:-3] + "y"
    if lower.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if lower.endswith("s") and not lower.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _title(phrase: str) -> str:
    """'time zone' → 'Time Zone', 'top-level' → 'Top-Level'; words with capitals (IATA, ISO)
    stay as written."""

    def cap(word: str) -> str:
        if not word.islower():
            return word
        return "-".join(part[:1].upper() + part[1:] for part in word.split("-"))

    return " ".join(cap(w) for w in phrase.split())


def _is_plural(word: str) -> bool:
    lower = word.lower()
    return (
        word.islower()
        and len(lower) > 3
        and lower.endswith("s")
        and not lower.endswith(("ss", "us", "is"))
        and lower not in _NOT_PLURAL
    )


def _without_lead_in(text: str) -> str:
    return _LEAD_IN.sub("", text.strip().rstrip("?.!")).strip()


def _words(text: str) -> list[str]:
    """The words of `text` less determiners, counts and rankings."""
    return [w for w in re.findall(r"[A-Za-z][\w'-]*", text) if w.lower() not in _SKIP_WORDS]


def _entity_column(head: str) -> str | None:
    """The key column from the part naming the entities: its first plural noun ("Which
    countries share …" → Country), else its first noun ("every country or territory in …" →
    Country)."""
    for sentence in re.split(r"(?<=[.?!])\s+", head.strip()):
        plural = next((w for w in _words(_without_lead_in(sentence)) if _is_plural(w)), None)
        if plural:
            return _title(_singular(plural))
    words = _words(_CLAUSE.split(_without_lead_in(head), maxsplit=1)[0])
    return _title(_singular(words[0])) if words else None


def _attribute_columns(tail: str) -> list[str]:
    tail = re.split(r"[.?!\n]", tail.strip(), maxsplit=1)[0]
    parts = [p.strip() for p in _LIST_SPLIT.split(tail)]
    out = []
    for part in parts:
        part = re.sub(r"^(?:their|its|the|each one's|each)\s+", "", part, flags=re.IGNORECASE)
        if part:
            out.append(_title(part))
    return out


def infer_columns(question: str) -> list[str] | None:
    """The columns an English question asks for, key column first; None when not readable."""
    if _CJK.search(question) or _COLUMNS_NAMED.search(question):
        return None
    first = question.strip().splitlines()[0] if question.strip() else ""
    for marker in _ATTRIBUTE_MARKERS:
        split = re.split(marker, first, maxsplit=1, flags=re.IGNORECASE)
        if len(split) != 2:
            continue
        key, attributes = _entity_column(split[0]), _attribute_columns(split[1])
        if key and attributes:
            return [key, *(a for a in attributes if a.lower() != key.lower())]
    return None


def _language(question: str) -> str:
    return "zh" if _CJK.search(question) else "en"


def table_request(question: str, columns: list[str] | None = None) -> TableRequest:
    """The question with its columns stated (given, else inferred, else left to the model)."""
    if columns is not None:
        columns = [c.strip() for c in columns if c.strip()]
        if not columns:
            raise ValueError("columns: give at least one column name")
    inferred = columns is None
    if columns is None:
        columns = infer_columns(question)
    if columns is None:
        return TableRequest(question, None, inferred=False)
    lang = _language(question)
    lines = [question.strip(), table_instruction(lang, columns), closing_line(lang)]
    return TableRequest("\n".join(lines), columns, inferred=inferred)
