"""Wide task suites in WideSearch's record format, with gold tables and planning metadata.

Contract: `make_wide_suites(facts, groups, seed, sizes)` returns, per split, a list of
`WideTask`: the WideSearch record (`instance_id`, `query`, `language`, `evaluation` as a JSON
string with `unique_columns`, `required`, `eval_pipeline`), the gold table (header of human
column titles + rows), and metadata for an oracle planner (family, entity kind, list pages, which
page holds which column) that is kept outside the record and never contains gold values.

Splits are assigned per (family, group split_key) with a seeded shuffle, so a dev/test task never
has the entity set of a train task of the same family. A task is a group × a column choice × a
wording; duplicates of (group, language, columns) are not emitted twice.

This module knows nothing about files or pages' text.
"""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from wideseek.world.columns import COLUMNS, Column
from wideseek.world.facts import FactBase
from wideseek.world.families import Group

SPLITS = ("train", "dev", "test")
SPLIT_SHARE = {"train": 0.8, "dev": 0.1, "test": 0.1}
MAX_COLUMNS = 8

# Share of tasks per family (before splitting); zh share among families that support Chinese.
FAMILY_WEIGHTS = {
    "neighbours": 0.22,
    "continent_part": 0.08,
    "currency_users": 0.06,
    "largest_cities": 0.2,
    "intl_airports": 0.12,
    "element_range": 0.17,
    "states_admitted": 0.15,
}
ZH_SHARE = 0.8

# How to search for a row entity's own page (measured on the local BM25 backend: a bare English
# country name ranks city pages that mention it above the country's profile; "<name> country"
# finds the profile in the top 5 for ~99% of rows).
MEMBER_QUERY = {("country", "en"): "{name} country"}


@dataclass
class WideTask:
    record: dict[str, str]
    header: list[str]
    rows: list[list[Any]]
    meta: dict[str, Any] = field(default_factory=dict)


def assign_splits(groups: Sequence[Group], seed: int) -> dict[str, dict[str, list[Group]]]:
    """family -> split -> groups; every group of one (family, split_key) lands in one split."""
    by_key: dict[str, dict[str, list[Group]]] = defaultdict(lambda: defaultdict(list))
    for g in groups:
        by_key[g.family][g.split_key].append(g)
    out: dict[str, dict[str, list[Group]]] = {}
    for family, keyed in sorted(by_key.items()):
        keys = sorted(keyed)
        random.Random(f"{seed}|split|{family}").shuffle(keys)
        n_eval = max(1, round(len(keys) * SPLIT_SHARE["dev"]))
        parts = {
            "dev": keys[:n_eval],
            "test": keys[n_eval : 2 * n_eval],
            "train": keys[2 * n_eval :],
        }
        out[family] = {s: [g for k in sorted(parts[s]) for g in keyed[k]] for s in SPLITS}
    return out


def make_wide_suites(
    facts: FactBase, groups: Sequence[Group], seed: int, sizes: dict[str, int]
) -> dict[str, list[WideTask]]:
    by_split = assign_splits(groups, seed)
    suites: dict[str, list[WideTask]] = {}
    for split in SPLITS:
        rng = random.Random(f"{seed}|wide|{split}")
        tasks: list[WideTask] = []
        seen: set[tuple] = set()
        for family, weight in FAMILY_WEIGHTS.items():
            pool = by_split.get(family, {}).get(split, [])
            _fill_family(facts, pool, math.ceil(sizes[split] * weight), rng, seen, tasks)
        for family in FAMILY_WEIGHTS:  # top up from any family when one ran out of variants
            pool = by_split.get(family, {}).get(split, [])
            _fill_family(facts, pool, sizes[split] - len(tasks), rng, seen, tasks)
        if len(tasks) < sizes[split]:
            raise ValueError(
                f"only {len(tasks)} distinct wide tasks can be made for split {split!r}, "
                f"{sizes[split]} requested"
            )
        rng.shuffle(tasks)
        for n, task in enumerate(tasks[: sizes[split]], 1):
            lang = task.record["language"]
            task.record["instance_id"] = f"wsw_{lang}_{split}_{n:05d}"
            task.meta["instance_id"] = task.record["instance_id"]
            task.record = {
                k: task.record[k] for k in ("instance_id", "query", "evaluation", "language")
            }
        suites[split] = tasks[: sizes[split]]
    return suites


def _fill_family(
    facts: FactBase,
    pool: list[Group],
    target: int,
    rng: random.Random,
    seen: set[tuple],
    out: list[WideTask],
) -> None:
    made, attempts = 0, 0
    while pool and made < target and attempts < target * 20:
        attempts += 1
        group = rng.choice(pool)
        lang = "zh" if "zh" in group.subject and rng.random() < ZH_SHARE else "en"
        columns = _pick_columns(facts, group, lang, rng)
        if columns is None:
            continue
        ident = (
            group.family,
            group.split_key,
            len(group.members),
            lang,
            tuple(c.name for c in columns),
        )
        if ident in seen:
            continue
        seen.add(ident)
        out.append(_make_task(facts, group, lang, columns, rng))
        made += 1


def _pick_columns(
    facts: FactBase, group: Group, lang: str, rng: random.Random
) -> list[Column] | None:
    key, *optional = COLUMNS[(group.kind, lang)]
    # A column is offered only if every row has a value: gold tables carry no empty cells.
    usable = [c for c in optional if all(c.get(m, facts) not in (None, "") for m in group.members)]
    if not usable:
        return None
    most = min(len(usable), MAX_COLUMNS - 1)
    # Mostly 2-6 columns; now and then as many as the kind offers (up to 8, like WideSearch).
    k = rng.randint(1, min(most, 5)) if rng.random() < 0.85 else rng.randint(1, most)
    chosen = set(rng.sample(range(len(usable)), k))
    return [key] + [c for i, c in enumerate(usable) if i in chosen]


def _make_task(
    facts: FactBase, group: Group, lang: str, columns: list[Column], rng: random.Random
) -> WideTask:
    evaluation = {
        "unique_columns": [columns[0].name],
        "required": [c.name for c in columns],
        "eval_pipeline": {c.name: c.pipeline() for c in columns},
    }
    query, notes = render_query(group, lang, columns, rng)
    record = {
        "instance_id": "",
        "query": query,
        "evaluation": json.dumps(evaluation, ensure_ascii=False),
        "language": lang,
    }
    rows = [[c.get(m, facts) for c in columns] for m in group.members]
    meta = {
        "family": group.family,
        "entity_kind": group.kind,
        "language": lang,
        "n_rows": len(rows),
        "list_pages": list(group.list_pages[lang]),
        "members_from": group.members_from,
        "member_query": MEMBER_QUERY.get((group.kind, lang), "{name}"),
        "column_sources": {c.title: c.source for c in columns},
        # the question's slots, so a rewording reads them instead of parsing the question
        "subject": group.subject[lang],
        "notes": notes,
    }
    return WideTask(record=record, header=[c.title for c in columns], rows=rows, meta=meta)


EN_OPENERS = (
    "I am putting together a reference sheet on {subject}.",
    "Could you help me collect some facts about {subject}?",
    "For a school project I need information on {subject}.",
    "Please find {subject}.",
    "I'd like an overview of {subject}.",
)
_EN_TABLE = (
    "Please organize the results in one Markdown table with the following columns:\n{columns}",
    "Put everything in a single Markdown table whose columns are, in order:\n{columns}",
    "Return one Markdown table with these columns:\n{columns}",
)
_EN_CLOSE = (
    "Don't ask me any questions, just output the results according to the columns without "
    "omitting cells arbitrarily. The output format is \n```markdown\n{{data_content}}\n```."
)
ZH_OPENERS = (
    "帮我整理一下{subject}的资料。",
    "我在做一份资料汇总，需要查询{subject}。",
    "请查找{subject}的相关信息。",
    "想了解{subject}的基本情况。",
)
_ZH_TABLE = (
    "请以一整个Markdown表格的格式输出整理后的数据，不要拆分成多个markdown表格。\n表格中的列名依次为：\n{columns}",
    "请把结果整理成一个Markdown表格，列名依次为：\n{columns}",
)
_ZH_CLOSE = (
    "不要问我任何问题，只需输出结果，每个单元格都需要按列名要求输出，不得无故省略，"
    "输出格式为```markdown{{数据内容}}```"
)


def table_instruction(lang: str, columns: list[str]) -> str:
    """One of the training questions' table lines, for a question asked outside the world."""
    if lang == "zh":
        return _ZH_TABLE[1].format(columns="、".join(columns))
    return _EN_TABLE[2].format(columns=", ".join(columns))


def closing_line(lang: str) -> str:
    """The training questions' last line (the answer format), in `lang`."""
    return (_ZH_CLOSE if lang == "zh" else _EN_CLOSE).format()


_EN_NUMBER_NOTES = (
    "Give {titles} as plain numbers, without units.",
    "For {titles}, write digits only (no units or words).",
)
_ZH_NUMBER_NOTE = "{titles}只填写阿拉伯数字，不带单位。"
_ZH_NAME_NOTE = "国家名称请使用中文。"


def _notes(lang: str, columns: list[Column], rng: random.Random) -> list[str]:
    """Formatting notes like WideSearch queries carry; added to some queries, not all."""
    numeric = [c.title for c in columns if c.metric == "number_near"]
    notes = []
    if numeric and rng.random() < 0.5:
        if lang == "zh":
            notes.append(_ZH_NUMBER_NOTE.format(titles="、".join(numeric)))
        else:
            notes.append(rng.choice(_EN_NUMBER_NOTES).format(titles=", ".join(numeric)))
    if lang == "zh" and rng.random() < 0.5:
        notes.append(_ZH_NAME_NOTE)
    return notes


def render_query(
    group: Group, lang: str, columns: list[Column], rng: random.Random
) -> tuple[str, list[str]]:
    """The question, and the formatting notes it carries (kept as slots for rewording)."""
    subject = group.subject[lang]
    titles = [c.title for c in columns]
    if lang == "zh":
        opener = rng.choice(ZH_OPENERS).format(subject=subject)
        table = rng.choice(_ZH_TABLE).format(columns="、".join(titles))
        notes = _notes(lang, columns, rng)
        return "\n".join([opener, table, *notes, _ZH_CLOSE.format()]), notes
    opener = rng.choice(EN_OPENERS).format(subject=subject)
    table = rng.choice(_EN_TABLE).format(columns=", ".join(titles))
    notes = _notes(lang, columns, rng)
    text = "\n".join([opener, table, *notes, _EN_CLOSE.format()])
    return text[0].upper() + text[1:], notes
