"""A person's question → the table request the agents were trained to answer.

People ask "List the 5 most populous cities of Morocco with their population and latitude.";
every training question (and every WideSearch question) also names the table's columns and its
format ("Return one Markdown table with these columns: …"). `table_request(question, columns)`
states the columns: the ones given, else the ones read out of the question (`infer_columns`),
and returns the question with the format lines added, so the model sees the shape it was
trained on and the person sees, before any work starts, the columns the answer will have.

`infer_columns` reads English questions of the shapes "<list …> ENTITIES … with (their) A, B
and C" / "… and their A and B" / "… : A, B, C"; the key column is the listed entity noun in the
singular ("cities" → "City"). Chinese questions of the shapes "列出…的ENTITIES及其A、B和C" /
"哪些ENTITIES…？列出它们的A和B" / "…ENTITIES：A、B、C" / "…ENTITIES的A和B（分别是什么）": the
key column is the entity noun after the last 的 and any count ("人口最多的5个城市" → 城市).
Other shapes and other languages give None: the question is then passed as asked (columns are
the model's choice) unless the caller names them. A question that already names its columns
("… columns: …") is left alone.
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


# Chinese: where the entities end and the attributes begin, strongest marker first ("的", the
# weakest, is tried last and only for a list of attributes: "…的5个城市" names no attribute).
_ZH_MARKERS = (
    r"[？?。！!]\s*(?:请|并)?(?:列出|给出|写出|告诉我)?(?:它们|其|各自)的?",
    r"以及它们的|和它们的|及它们的|以及各自的|及各自的|以及其|及其",
    r"[，,]\s*(?:包括|包含|列出|给出)(?:它们的|其|各自的)?",
    r"[：:]",
)
_ZH_LEAD_IN = re.compile(
    r"^(?:请|麻烦)?(?:帮我)?(?:列出|列举|给出|给我|找出|查找|查一下|整理|告诉我|比较|对比)?"
    r"(?:一(?:张|个|份)(?:markdown)?(?:表格|表|列表|清单)(?:[，,：:]|，?列出)?)?",
    re.IGNORECASE,
)
_ZH_WHICH = re.compile(r"^(?:有)?哪些(.+?)(?:与|和|在|位于|的|有|是|拥有|属于|使用|同|跟|被|于|$)")
_ZH_EVERY = re.compile(r"所有|全部|每一个|每个|各个|各")
_ZH_COUNT = re.compile(r"^(?:前|最)?(?:\d+|[一二两三四五六七八九十百]+)?(?:个|座|位|名|种|家|条)")
_ZH_ASK_END = re.compile(r"(?:分别|各自|各)?(?:是(?:什么|多少)|是多少|为何|有哪些|如何)?$")
_ZH_LIST_SPLIT = re.compile(r"\s*(?:、|，|,|；|;|以及|还有|和|及|与)\s*(?![^（(]*[）)])")


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


def _zh_entity_column(head: str) -> str | None:
    """The key column from the Chinese part naming the entities (module docstring)."""
    which = _ZH_WHICH.match(head)
    noun = which.group(1) if which else head.rsplit("的", 1)[-1]
    noun = _ZH_COUNT.sub("", _ZH_EVERY.split(noun)[-1]).strip()
    # a long remainder is a clause, not a noun: better no columns than a wrong key column
    return noun if 0 < len(noun) <= 6 and _CJK.search(noun) else None


def _zh_attribute_columns(tail: str) -> list[str]:
    tail = re.split(r"[。？?！!\n]", tail.strip(), maxsplit=1)[0]
    tail = _ZH_ASK_END.sub("", tail.strip())
    parts = (re.sub(r"^(?:它们的|各自的|其|的)", "", p.strip()) for p in _ZH_LIST_SPLIT.split(tail))
    return [p for p in parts if p]


def _infer_zh(line: str) -> list[str] | None:
    line = _ZH_LEAD_IN.sub("", line.strip()).strip()
    splits = [re.split(m, line, maxsplit=1) for m in _ZH_MARKERS]
    weakest = line.rsplit("的", 1)
    for split in [*splits, weakest]:
        if len(split) != 2:
            continue
        key, attributes = _zh_entity_column(split[0]), _zh_attribute_columns(split[1])
        if key and attributes and (split is not weakest or len(attributes) > 1):
            return [key, *(a for a in attributes if a != key)]
    return None


def infer_columns(question: str) -> list[str] | None:
    """The columns an English or Chinese question asks for, key column first; None when not
    readable."""
    if _COLUMNS_NAMED.search(question):
        return None
    first = question.strip().splitlines()[0] if question.strip() else ""
    if _CJK.search(first):
        return _infer_zh(first)
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
