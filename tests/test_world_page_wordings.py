"""One table of wordings writes the pages and reads them back (world/page_wordings.py and the
patterns oracle/page_facts.py makes from it)."""

from __future__ import annotations

import random
from string import Formatter

import pytest

from wideseek.world.oracle.page_facts import PATTERNS, read_attr, wording_patterns
from wideseek.world.page_wordings import WORDINGS, write

# A value for every field, picked to be hard to read back: names with full stops, commas and
# "and", negative and separated numbers, placeholder codes.
SAMPLES: dict[str, object] = {
    "name": "Saint Vincent and the Grenadines",
    "continent": "North America",
    "capital": "St. John's",
    "population": 2067372,
    "area_km2": 20273,
    "currency": "East Caribbean Dollar",
    "currency_code": "XCD",
    "languages": "Kyrgyz, Uzbek and Russian",
    "neighbours": "Bosnia and Herzegovina, Serbia and Montenegro",
    "iso2": "VC",
    "iso3": "VCT",
    "calling_code": "+1-784",
    "tld": ".vc",
    "start": 1965,
    "end": 2002,
    "name_en": "Democratic Republic of the Congo",
    "country": "Indonesia",
    "city": "Bandung, Java Island",
    "latitude": -33.45,
    "longitude": 121.4581,
    "timezone": "America/Argentina/Buenos_Aires",
    "iata": "BFY",
    "icao": "_BFY",
    "elevation_ft": -54,
    "symbol": "Og",
    "number": 118,
    "mass": 294.0,
    "density": 7.26,
    "abbr": "CT",
    "statehood_year": 1788,
    "fips": "09",
    "capital_tz": "America/New_York",
    "code": "XCD",
    "lo": 1,
    "hi": 10,
}
SAMPLES_ZH: dict[str, object] = {
    "name": "刚果（金）",
    "continent": "非洲",
    "currency": "刚果法郎",
    "neighbours": "中非、南苏丹、刚果（布）",
}
# What the reader gives back when it is not the value as written.
READ_AS = {"languages": "Kyrgyz, Uzbek, Russian"}

# Every attribute the oracle reads, by page kind (world/oracle/lookup.py and members.py).
READ = {
    "country": {
        "capital",
        "population",
        "area_km2",
        "currency",
        "currency_code",
        "languages",
        "neighbours",
    },
    "country_codes": {"iso2", "iso3", "calling_code", "tld"},
    "country_zh": {
        "name_en",
        "capital",
        "population",
        "area_km2",
        "currency",
        "currency_code",
        "iso2",
        "iso3",
        "calling_code",
        "tld",
        "neighbours",
    },
    "city": {"country", "population", "latitude", "longitude", "timezone"},
    "airport": {"city", "country", "iata", "icao", "elevation_ft", "timezone"},
    "element": {"symbol", "number", "mass", "density"},
    "us_state": {"abbr", "capital", "statehood_year", "fips", "capital_tz"},
}


def _fields(wording: str) -> list[str]:
    return [field for _, field, _, _ in Formatter().parse(wording) if field]


def _samples(kind: str) -> dict[str, object]:
    return {**SAMPLES, **SAMPLES_ZH} if kind == "country_zh" else SAMPLES


WORDING_CASES = [
    pytest.param(kind, wording, id=f"{kind}:{sentence}:{k}")
    for kind, sentences in WORDINGS.items()
    for sentence, wordings in sentences.items()
    for k, wording in enumerate(wordings)
]


@pytest.mark.parametrize(("kind", "wording"), WORDING_CASES)
def test_every_field_of_every_wording_reads_back(kind, wording):
    samples = _samples(kind)
    text = wording.format(**samples)
    for field in _fields(wording):
        assert read_attr(kind, field, text) == READ_AS.get(field, str(samples[field])), field


@pytest.mark.parametrize(("kind", "wording"), WORDING_CASES)
def test_wordings_read_back_among_the_other_sentences_of_their_page(kind, wording):
    """Each wording in a page of one wording per sentence, so other sentences stand around it."""
    samples = _samples(kind)
    others = [ws[0].format(**samples) for ws in WORDINGS[kind].values() if wording not in ws]
    text = " ".join([*others[:2], wording.format(**samples), *others[2:]])
    for field in _fields(wording):
        if field in READ.get(kind, ()):
            assert read_attr(kind, field, text) == READ_AS.get(field, str(samples[field])), field


def test_every_attribute_the_oracle_reads_has_a_wording():
    for kind, attrs in READ.items():
        for attr in attrs:
            assert PATTERNS.get((kind, attr)), (kind, attr)


def test_thousands_separators_are_written_and_dropped_on_reading():
    text = WORDINGS["city"]["population"][0].format(population=24874500)
    assert text == "It has a population of 24,874,500."
    assert read_attr("city", "population", text) == "24874500"


def test_a_wording_of_two_sentences_is_read_one_sentence_at_a_time():
    # Search snippets cut text at sentence ends: "ICAO code: ..." may stand alone.
    assert read_attr("airport", "icao", "ICAO code: EDKA.") == "EDKA"
    assert read_attr("airport", "iata", "X Airport is near Aachen. IATA code: AAH.") == "AAH"
    assert len(wording_patterns("IATA code: {iata}. ICAO code: {icao}.")) == 2


def test_a_format_the_reader_cannot_undo_is_refused():
    with pytest.raises(ValueError, match="format"):
        wording_patterns("It weighs {mass:.2f} units.")


def test_a_sentence_of_one_wording_draws_nothing():
    rng, same = random.Random(3), random.Random(3)
    assert write(rng, "us_state", "fips", {"fips": "09"}) == "FIPS state code: 09."
    assert write(rng, "element", "no_density", {}) == "Its density has not been measured."
    assert rng.random() == same.random()
    wordings = WORDINGS["us_state"]["capital"]
    drawn = write(rng, "us_state", "capital", {"capital": "Hartford"})
    assert drawn == same.choice(wordings).format(capital="Hartford")
