"""Table columns a wide task can ask for: title, gold value, WideSearch metric, source page.

Contract: `COLUMNS[kind]` lists, per entity kind, the key column first and then the optional
attribute columns. Each `Column` knows how to read its gold value from the FactBase, which
WideSearch preprocess/metric pair scores it (the way WideSearch uses them: exact_match on names
and codes, number_near with a tolerance on quantities, url_match on URLs, llm_judge with a
criterion on free text), and on which page the value is written (`source`), which is planning
metadata for the oracle. Column titles are human titles; `norm_column` gives the scorer's name.

This module knows nothing about queries, splits or files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wideseek.world.facts import Entity, FactBase
from wideseek.world.pages import entity_url

CRITERION_EN = (
    "It is sufficient if the semantics are approximately the same as the reference answer or "
    "if they point to the same entity. There is no need for a word-for-word correspondence."
)
CRITERION_ZH = "和参考答案语义大致相同、或者指向的实体一致即可，不需要字字对应。"
LIST_CRITERION_EN = (
    CRITERION_EN + "\nAll items of the reference answer must be included; order does not matter."
)

Getter = Callable[[Entity, FactBase], Any]


def norm_column(title: str) -> str:
    """WideSearch's column-name normalisation: strip, lowercase, delete ASCII spaces."""
    return title.strip().lower().replace(" ", "")


@dataclass(frozen=True)
class Column:
    title: str
    get: Getter
    metric: str  # exact_match | number_near | url_match | llm_judge
    # Which page holds the value: "entity" (the row entity's page, in the task's language),
    # "entity/codes" (its ".../codes" sub-page), "capital_city" (the page of its capital).
    source: str
    tolerance: float | None = None
    criterion: str | None = None

    @property
    def name(self) -> str:
        return norm_column(self.title)

    def pipeline(self) -> dict[str, Any]:
        if self.metric == "number_near":
            return {
                "preprocess": ["extract_number"],
                "metric": ["number_near"],
                "criterion": self.tolerance,
            }
        entry: dict[str, Any] = {"preprocess": ["norm_str"], "metric": [self.metric]}
        if self.metric == "llm_judge":
            entry["criterion"] = self.criterion
        return entry


def _attr(name: str) -> Getter:
    return lambda e, facts: e.attrs.get(name)


def _capital_population(e: Entity, facts: FactBase) -> Any:
    city = facts.get(e.attrs["capital_city"])
    return city.attrs["population"] if city else None


def _languages(e: Entity, facts: FactBase) -> Any:
    return ", ".join(e.attrs["languages"]) or None


def _name(e: Entity, facts: FactBase) -> Any:
    return e.name


def _name_zh(e: Entity, facts: FactBase) -> Any:
    return e.name_zh


def _page_url(e: Entity, facts: FactBase) -> Any:
    return entity_url(e)


def _exact(title: str, get: Getter, source: str = "entity") -> Column:
    return Column(title, get, "exact_match", source)


def _near(title: str, get: Getter, tolerance: float, source: str = "entity") -> Column:
    return Column(title, get, "number_near", source, tolerance=tolerance)


def _judge(title: str, get: Getter, criterion: str, source: str = "entity") -> Column:
    return Column(title, get, "llm_judge", source, criterion=criterion)


COLUMNS: dict[tuple[str, str], list[Column]] = {
    ("country", "en"): [
        _exact("Country", _name),
        _exact("Capital", _attr("capital")),
        _near("Capital Population", _capital_population, 0.01, "capital_city"),
        _near("Population", _attr("population"), 0.01),
        _near("Area (km²)", _attr("area_km2"), 0.01),
        _judge("Currency", _attr("currency"), CRITERION_EN),
        _exact("Currency Code", _attr("currency_code")),
        _judge("Languages", _languages, LIST_CRITERION_EN),
        _exact("ISO Alpha-3 Code", _attr("iso3"), "entity/codes"),
        _near("Calling Code", _attr("calling_code"), 0.0, "entity/codes"),
        _exact("Top-Level Domain", _attr("tld"), "entity/codes"),
        Column("Profile Page", _page_url, "url_match", "entity"),
    ],
    ("country", "zh"): [
        _exact("国家", _name_zh),
        _exact("英文名称", _name),
        _near("人口", _attr("population"), 0.01),
        _near("面积（平方公里）", _attr("area_km2"), 0.01),
        _judge("货币", _attr("currency_zh"), CRITERION_ZH),
        _exact("货币代码", _attr("currency_code")),
        _exact("ISO三位代码", _attr("iso3")),
        _near("国际电话区号", _attr("calling_code"), 0.0),
        _exact("顶级域名", _attr("tld")),
    ],
    ("city", "en"): [
        _exact("City", _name),
        _near("Population", _attr("population"), 0.01),
        _near("Latitude", _attr("latitude"), 0.001),
        _near("Longitude", _attr("longitude"), 0.001),
        _exact("Time Zone", _attr("timezone")),
    ],
    ("airport", "en"): [
        _exact("Airport", _name),
        _exact("IATA Code", _attr("iata")),
        _exact("ICAO Code", _attr("icao")),
        _judge("City Served", _attr("city"), CRITERION_EN),
        _near("Elevation (ft)", _attr("elevation_ft"), 0.05),
        _exact("Time Zone", _attr("timezone")),
    ],
    ("element", "en"): [
        _exact("Element", _name),
        _exact("Symbol", _attr("symbol")),
        _near("Atomic Number", _attr("number"), 0.0),
        _near("Atomic Mass", _attr("mass"), 0.001),
        _near("Density (g/cm³)", _attr("density"), 0.01),
    ],
    ("us_state", "en"): [
        _exact("State", _name),
        _exact("Abbreviation", _attr("abbr")),
        _exact("Capital", _attr("capital")),
        _near("Statehood Year", _attr("statehood_year"), 0.0),
        _exact("FIPS Code", _attr("fips")),
        _exact("Capital Time Zone", _attr("capital_tz")),
    ],
}
