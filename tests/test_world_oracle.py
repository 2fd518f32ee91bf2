"""The oracle policy: it solves world tasks through the real runtime, from what pages say."""

import csv
import json
import re
from collections import defaultdict

import pytest

from run_tasks import run_many
from wideseek.agents.orchestrator import Orchestrator
from wideseek.cli import main
from wideseek.config import AgentConfig, ToolsConfig
from wideseek.eval.error_analysis import lister_analysis
from wideseek.eval.runner import read_results
from wideseek.eval.table_extract import extract_table, norm_column
from wideseek.eval.task_scoring import TaskScorer
from wideseek.runtime.oracle_run import run_oracle
from wideseek.tools.base import Page, SearchHit
from wideseek.tools.local_corpus import LocalCorpus
from wideseek.tools.search_tools import make_tools
from wideseek.types import Failure, Task
from wideseek.world.oracle import OracleEngine
from wideseek.world.oracle.lookup import lookup
from wideseek.world.oracle.members import list_members
from wideseek.world.oracle.page_facts import (
    PATTERNS,
    and_splits,
    keyed_item,
    read_attr,
    split_names,
)
from wideseek.world.oracle.steps import Call, parallel
from wideseek.world.oracle.text import (
    EntitySubtask,
    Subject,
    entity_line,
    member_report,
    member_subtask,
    parse_entity_lines,
    parse_entity_subtask,
    parse_member_subtask,
    question_subject,
    report_names,
)
from wideseek.world.store import load_world
from wideseek.world.suites import deep_tasks, wide_tasks


@pytest.fixture(scope="module")
def world():
    return load_world()


@pytest.fixture(scope="module")
def corpus(world):
    return LocalCorpus(world.corpus_path)


def _sample_wide(world, per_key: int = 1) -> list[Task]:
    """A few dev tasks of every (family, language), in file order."""
    picked: dict[tuple[str, str], list[Task]] = defaultdict(list)
    for task in wide_tasks(world, "dev"):
        key = (task.metadata["family"], task.language)
        if len(picked[key]) < per_key:
            picked[key].append(task)
    return [t for tasks in picked.values() for t in tasks]


async def _play(tasks, backend, mode="multi"):
    orchestrator = Orchestrator.with_backend(OracleEngine(tasks), backend, AgentConfig(mode=mode))
    return await run_many(orchestrator, tasks, concurrency=4)


# -- the reader ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "attr", "text", "value"),
    [
        (
            "country",
            "capital",
            "Antigua is a country. St. John's serves as the capital.",
            "St. John's",
        ),
        ("country", "capital", "The capital city of Chile is Santiago. Population: 5.", "Santiago"),
        ("country", "population", "X has a population of about 2,067,372 people.", "2067372"),
        ("country", "area_km2", "Total area: 20,273 square kilometres.", "20273"),
        ("country", "currency", "Official currency: US Dollar (USD).", "US Dollar"),
        ("country", "currency_code", "Chile uses the Chilean Peso, code CLP.", "CLP"),
        (
            "country",
            "languages",
            "Languages spoken include Kyrgyz, Uzbek and Russian.",
            "Kyrgyz, Uzbek, Russian",
        ),
        ("country_codes", "calling_code", "To phone Antigua from abroad, dial +1-268.", "+1-268"),
        ("country_codes", "tld", "Its internet country code top-level domain is .kg.", ".kg"),
        (
            "country_zh",
            "name_en",
            "刚果（金）（Democratic Republic of the Congo）是位于非洲的国家。",
            "Democratic Republic of the Congo",
        ),
        ("country_zh", "currency", "法定货币：欧元，代码EUR。", "欧元"),
        ("country_zh", "currency_code", "通用货币为吉尔吉斯斯坦索姆（KGS）。", "KGS"),
        ("country_zh", "calling_code", "国际长途区号：+996。", "+996"),
        (
            "city",
            "latitude",
            "It lies at -33.45° latitude, -70.66° longitude (decimal degrees).",
            "-33.45",
        ),
        ("city", "longitude", "Coordinates: latitude 33.5883, longitude -7.6114.", "-7.6114"),
        (
            "airport",
            "city",
            "X Airport is an airport serving Bandung, Java Island, Indonesia.",
            "Bandung, Java Island",
        ),
        (
            "airport",
            "country",
            "X Airport is located near Bengbu in China. IATA code: BFY.",
            "China",
        ),
        ("airport", "icao", "It has the IATA code BFY and the ICAO code _BFY.", "_BFY"),
        ("element", "mass", "Its standard atomic mass is 145.0. Density: 7.26 g/cm³.", "145.0"),
        ("us_state", "fips", "FIPS state code: 09.", "09"),
        ("element", "density", "Its density has not been measured.", None),
    ],
)
def test_reader_reads_each_wording(kind, attr, text, value):
    assert read_attr(kind, attr, text) == value


def test_name_lists_and_their_ambiguous_readings():
    assert split_names("中国、塔吉克斯坦、刚果（金）", "zh") == ["中国", "塔吉克斯坦", "刚果（金）"]
    assert split_names("Spain and France", "en") == ["Spain", "France"]
    readings = and_splits("Croatia, Serbia and Bosnia and Herzegovina")
    assert ["Croatia", "Serbia", "Bosnia and Herzegovina"] in readings
    assert ["Croatia", "Serbia and Bosnia", "Herzegovina"] in readings
    assert and_splits("A, B and C") == [["A", "B", "C"]]


# Facts some pages do not state (no land border, unmeasured density, no capital ...).
OPTIONAL = {"neighbours", "density", "capital", "area_km2", "currency", "currency_code"}
OPTIONAL_CODES = {"calling_code", "tld"}  # Kosovo has neither


def _page_kind(url: str) -> str | None:
    path = url.split("world.wideseek.local/", 1)[1].split("/")
    if path[:2] == ["zh", "country"]:
        return "country_zh"
    if path[0] == "country":
        sections = {"codes": "country_codes", "currency-history": "country_currency_history"}
        return "country" if len(path) == 2 else sections.get(path[2])
    return {"city": "city", "airport": "airport", "element": "element", "us-state": "us_state"}.get(
        path[0]
    )


def test_reader_covers_every_page_of_the_shipped_world(world):
    attrs = defaultdict(list)
    for kind, attr in PATTERNS:
        attrs[kind].append(attr)
    unread = defaultdict(int)
    unused = {
        (kind, p.pattern.pattern) for (kind, _), patterns in PATTERNS.items() for p in patterns
    }
    unused = {(kind, p) for kind, p in unused if kind != "list"}  # list pages are read by lines
    pages = 0
    with world.corpus_path.open(encoding="utf-8") as f:
        for line in f:
            page = json.loads(line)
            kind = _page_kind(page["url"])
            if kind is None:
                continue
            pages += 1
            for attr in attrs[kind]:
                if read_attr(kind, attr, page["text"]) is None:
                    unread[(kind, attr)] += 1
                unused -= {
                    (kind, p.pattern.pattern)
                    for p in PATTERNS[kind, attr]
                    if p.pattern.search(page["text"])
                }
    assert pages > 5000
    # Every wording the pages are written in shows up: the templates really vary the text.
    assert unused == set()
    required = {k: n for k, n in unread.items() if k[1] not in OPTIONAL | OPTIONAL_CODES}
    assert required == {}, f"pages whose wording the reader misses: {required}"
    assert unread[("country_codes", "calling_code")] <= 2


# -- the fixed phrasings ---------------------------------------------------------------------


def test_subtasks_and_reports_round_trip(world):
    sub = EntitySubtask(
        "city", "en", ("Latitude", "Time Zone"), ("Rabat (Morocco)", "Fes (Morocco)")
    )
    assert parse_entity_subtask(sub.render()) == sub
    zh = EntitySubtask("country", "zh", ("人口", "货币代码"), ("中国", "印度"))
    assert parse_entity_subtask(zh.render()) == zh
    report = "\n".join(
        [
            entity_line("Rabat (Morocco)", {"Latitude": "34.0132", "Time Zone": None}),
            entity_line("Fes (Morocco)", None),
        ]
    )
    assert parse_entity_lines(report) == {
        "Rabat (Morocco)": {"Latitude": "34.0132"},
        "Fes (Morocco)": {},
    }
    # a member report: the names numbered in order (never a count to live up to first)
    assert member_report(["Arsenic", "Selenium"], "en") == "1. Arsenic\n2. Selenium"
    assert member_report(["中国", "印度"], "zh") == "1. 中国\n2. 印度"
    assert report_names(member_report(["Arsenic", "Selenium"], "en")) == ["Arsenic", "Selenium"]
    # read inside the lead's delegation result, its header and other text ignored
    wrapped = "## Subagent 1: List the 2 largest ...\n1. Arsenic\n- stray\n2. Selenium\n"
    assert report_names(wrapped) == ["Arsenic", "Selenium"]
    for split in ("dev", "test"):
        for task in wide_tasks(world, split):
            subject = question_subject(task.question)
            assert subject is not None and subject.family == task.metadata["family"], task.id
            assert parse_member_subtask(member_subtask(subject)) == subject


def test_parallel_packs_calls_into_turns_without_splitting_a_routine():
    def routine(name: str, sizes: list[int]):
        seen = []
        for size in sizes:
            seen += yield [Call(name, {"i": i}) for i in range(size)]
        return f"{name}:{len(seen)}"

    steps = parallel([routine("a", [2, 1]), routine("b", [3]), routine("c", [1])], capacity=4)
    turns, result = [], None
    calls = next(steps)
    try:
        while True:
            turns.append([c.name for c in calls])
            calls = steps.send([f"r{i}" for i in range(len(calls))])
    except StopIteration as done:
        result = done.value
    assert turns == [["a", "a", "c"], ["a", "b", "b", "b"]]
    assert result == ["a:3", "b:3", "c:1"]


# -- step routines against the real tools ---------------------------------------------------


async def drive(routine, backend):
    """Run a step routine's calls with the runtime's own search/access tools."""
    tools = {t.name: t for t in make_tools("wideseek", "subagent", backend, ToolsConfig())}
    calls = next(routine)
    try:
        while True:
            assert len(calls) <= 5
            calls = routine.send([(await tools[c.name].call(c.arguments)).text for c in calls])
    except StopIteration as done:
        return done.value


async def test_lookups_tell_namesakes_apart_and_fill_gaps_of_chinese_pages(corpus):
    titles = ("IATA Code", "City Served")
    for country, iata, city in (
        ("Colombia", "SMR", "Santa Marta"),
        ("Ecuador", "GYE", "Guayaquil"),
    ):
        ref = f"Simon Bolivar International Airport ({country})"
        found = await drive(lookup("airport", "en", ref, titles, 5), corpus)
        assert found == {"IATA Code": iata, "City Served": city}
    # The Chinese page of Zimbabwe names no currency; its English page does.
    found = await drive(lookup("country", "zh", "津巴布韦", ("货币代码", "人口"), 5), corpus)
    assert found == {"货币代码": "ZWG", "人口": "16868409"}
    found = await drive(lookup("country", "en", "Kenya", ("Capital Population",), 5), corpus)
    assert found is not None and found["Capital Population"].isdigit()
    assert await drive(lookup("element", "en", "Unobtainium", ("Symbol",), 5), corpus) is None


async def test_member_lists_read_from_list_and_profile_pages(corpus):
    def subject(family, lang, **params):
        return Subject(family, lang, "", params)

    states = await drive(
        list_members(subject("states_admitted", "en", y1="1787", y2="1788"), 5), corpus
    )
    assert states.names[:3] == ["Delaware", "New Jersey", "Pennsylvania"]
    assert len(states.names) == 11
    # a cut out of the admission list (each state's year before it) says where it starts and
    # ends, each end as the page writes it: number first
    assert states.note == f"Admitted 1787 to 1788: from 1787: Delaware to 1788: {states.names[-1]}."
    # "..., Croatia, Bosnia and Herzegovina and Bulgaria": the longer name is checked by search.
    neighbours = await drive(
        list_members(subject("neighbours", "en", country="Serbia and Montenegro"), 5), corpus
    )
    assert neighbours.names[-2:] == ["Bosnia and Herzegovina", "Bulgaria"]
    assert neighbours.note == ""  # a whole list: nothing to pick
    elements = await drive(list_members(subject("element_range", "en", lo="9", hi="12"), 5), corpus)
    assert elements.names == ["Fluorine", "Neon", "Sodium", "Magnesium"]
    # read across two pages (1-10 and 11-20), by the atomic number before each name
    assert elements.note == "Atomic numbers 9 to 12: from 9: Fluorine to 12: Magnesium."
    cities = await drive(
        list_members(subject("largest_cities", "en", n="17", country="Japan"), 5), corpus
    )
    assert len(cities.names) == 17 and cities.names[0] == "Tokyo"


# -- through the runtime ---------------------------------------------------------------------


async def test_oracle_solves_dev_wide_tasks_of_every_family_and_language(world, corpus):
    tasks = _sample_wide(world)
    assert len(tasks) >= 10 and {t.language for t in tasks} == {"en", "zh"}
    trajectories = await _play(tasks, corpus)
    scorer = TaskScorer()
    scores = [await scorer(t, tr) for t, tr in zip(tasks, trajectories, strict=True)]
    mean = sum(s["item_f1"] for s in scores) / len(scores)
    assert mean >= 0.95, [(t.id, s["msg"]) for t, s in zip(tasks, scores, strict=True)]
    # the error analysis reads its listers as lists of the gold table's size
    listers = lister_analysis(trajectories)
    assert listers.listed == len(tasks) and listers.same == len(tasks)
    for traj in trajectories:
        assert traj.error is None and traj.lead.ok
        first = traj.lead.turns[0].tool_calls[0].arguments["subtasks"]
        assert len(first) == 1 and parse_member_subtask(first[0]) is not None
        for sub in traj.subagents:
            assert sub.ok and len(sub.turns) >= 2
            assert all(len(t.tool_calls) <= 5 for t in sub.turns)
        # the lister reports the names numbered, the last number the row count; a cut out of
        # a longer list (a ranking's top, a range of elements or years, a continent's run) is
        # thought through first
        lister = traj.subagents[0].turns[-1].response_text
        n_rows = traj.task.metadata["n_rows"]
        assert lister.rstrip().splitlines()[-1].startswith(f"{n_rows}. "), lister
        family = traj.task.metadata["family"]
        cut = family in ("element_range", "states_admitted", "continent_part", "largest_cities")
        assert lister.startswith("<think>") == cut, (family, lister)
        # the plan names no count of subtasks to compute: they follow the list
        plan = traj.lead.turns[1].response_text
        assert f"{n_rows} rows, " in plan and "in the listed order." in plan, plan
        # one lister, then 1-3 rows per subagent
        assert -(-n_rows // 3) + 1 <= len(traj.subagents) <= n_rows + 1


async def test_oracle_answers_deep_questions_of_every_shape(world, corpus):
    by_shape: dict[str, Task] = {}
    for task in deep_tasks(world, "dev"):
        by_shape.setdefault(task.metadata["shape"], task)
    tasks = list(by_shape.values())
    scorer = TaskScorer()
    for mode in ("multi", "single"):
        trajectories = await _play(tasks, corpus, mode)
        for task, traj in zip(tasks, trajectories, strict=True):
            assert (await scorer(task, traj))["em"] == 1.0, (mode, task.question, traj.final_answer)
        if mode == "multi":
            hops = {t.id: t.metadata["hops"] for t in tasks}
            assert all(len(tr.subagents) == hops[tr.task.id] for tr in trajectories)


async def test_single_agent_solves_wide_tasks_alone(world, corpus):
    tasks = [t for t in _sample_wide(world) if t.metadata["n_rows"] <= 12][:4]
    trajectories = await _play(tasks, corpus, "single")
    scorer = TaskScorer()
    for task, traj in zip(tasks, trajectories, strict=True):
        assert traj.agents[0].role == "single" and len(traj.agents) == 1
        assert (await scorer(task, traj))["item_f1"] == 1.0, task.id


async def test_single_agent_thinks_its_cut_before_its_lookups(world, corpus):
    [task] = [t for t in _sample_wide(world) if t.metadata["family"] == "element_range"][:1]
    [traj] = await _play([task], corpus, "single")
    texts = [turn.response_text for turn in traj.agents[0].turns]
    listed = next(i for i, t in enumerate(texts) if "/list/elements-" in t)  # opens the lists
    lookups = texts[listed + 1]
    assert lookups.startswith("<think>\nAtomic numbers ") and "<tool_call>" in lookups
    assert sum(t.startswith("<think>") for t in texts[:-1]) == 1  # no other turn thinks


class Withholding:
    """A backend that hides entity pages of one section, or shows their numbers changed."""

    def __init__(self, inner, section: str, shift: float | None = None) -> None:
        self.inner, self.section, self.shift = inner, f"world.wideseek.local/{section}/", shift

    async def search(self, query: str, k: int) -> list[SearchHit]:
        hits = await self.inner.search(query, k)
        return [h for h in hits if self.shift is not None or self.section not in h.url]

    async def access(self, url: str) -> Page | None:
        page = await self.inner.access(url)
        if page is None or self.section not in url:
            return page
        if self.shift is None:
            return None

        def moved(m: re.Match) -> str:
            return f"{float(m.group()) + self.shift:.4f}"

        return page.model_copy(update={"text": re.sub(r"-?\d+\.\d{4}", moved, page.text)})


def _column(answer: str, title: str) -> dict[str, float]:
    table = extract_table(answer)  # headers come back lower-cased, without spaces
    keys = [str(k) for k in table.iloc[:, 0]]
    return {k: float(v) for k, v in zip(keys, table[norm_column(title)], strict=True)}


async def test_values_come_from_the_pages_the_oracle_read(world, corpus):
    task = next(
        t
        for t in wide_tasks(world, "dev")
        if t.metadata["family"] == "largest_cities" and "Latitude" in t.metadata["column_sources"]
    )
    (withheld,) = await _play([task], Withholding(corpus, "city"))
    assert (await TaskScorer()(task, withheld))["item_f1"] < 0.7
    assert "N/A" in withheld.final_answer
    (changed,) = await _play([task], Withholding(corpus, "city", shift=1.0))
    with open(task.metadata["gold"], encoding="utf-8") as f:
        gold = {row["City"]: float(row["Latitude"]) for row in csv.DictReader(f)}
    # The table follows the pages it was shown, not the facts behind the world.
    assert _column(changed.final_answer, "Latitude") == pytest.approx(
        {city: lat + 1.0 for city, lat in gold.items()}
    )


async def test_unknown_questions_end_in_a_recorded_engine_error(corpus):
    task = Task(id="x", question="What is the answer to everything?", kind="qa")
    traj = await Orchestrator.with_backend(OracleEngine([]), corpus).run(task)
    assert Failure.ENGINE_ERROR in traj.lead.failures


async def test_run_oracle_writes_a_resumable_scored_run(world, tmp_path):
    first = await run_oracle(world, "deep", "dev", tmp_path, limit=3, show_progress=False)
    assert first.tasks == 3 and first.metrics["em"] == 1.0 and first.errors == 0
    assert {"lead", "subagent"} <= set(first.contexts)
    again = await run_oracle(world, "deep", "dev", tmp_path, limit=3, show_progress=False)
    assert again.tasks == 3 and len(read_results(tmp_path)) == 3
    lines = (tmp_path / "trajectories.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3


def _cli(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def test_cli_runs_the_oracle_and_refuses_a_run_dir_of_other_settings(tmp_path, capsys):
    args = ["world", "oracle", "--suite", "deep", "--split", "dev", "--limit", "2"]
    assert _cli([*args, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2 tasks: em 1.0000" in out and "subagent" in out
    assert _cli([*args, "--mode", "single", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "other settings" in err and "\n" not in err
    assert _cli([*args, "--world", str(tmp_path / "nowhere")]) == 1
    assert capsys.readouterr().err.startswith("error:")


async def test_oracle_plays_the_r1_profile_with_batched_calls(world, corpus):
    tasks = _sample_wide(world)[:4]
    config = AgentConfig(profile="wideseek-r1")
    orchestrator = Orchestrator.with_backend(OracleEngine(tasks, config), corpus, config)
    trajectories = await run_many(orchestrator, tasks)
    scorer = TaskScorer()
    for task, traj in zip(tasks, trajectories, strict=True):
        assert (await scorer(task, traj))["item_f1"] == 1.0, task.id
        for sub in traj.subagents:
            assert all(len(turn.tool_calls) <= 1 for turn in sub.turns)
            assert not any(Failure.TOO_MANY_CALLS in turn.failures for turn in sub.turns)


def test_a_keyed_list_item_is_read_number_first_and_on_older_worlds_name_first():
    assert keyed_item("32: Germanium") == ("Germanium", 32)
    assert keyed_item("1845: Florida") == ("Florida", 1845)
    assert keyed_item("Germanium (32)") == ("Germanium", 32)  # world a0fe5765's pages
    assert keyed_item("Casablanca") is None
    assert keyed_item("Congo (Brazzaville)") is None
