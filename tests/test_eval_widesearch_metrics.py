"""Per-cell preprocess functions and metrics, against SCORER.md §2."""

from datetime import datetime

import pytest

from wideseek.eval.widesearch_metrics import (
    FROZEN_NOW,
    cell_metric,
    date_near,
    dateparse,
    exact_match,
    extract_number,
    in_match,
    norm_date,
    norm_str,
    number_near,
    preprocess_function,
    url_match,
)


def test_norm_str_keeps_newlines_and_punctuation():
    assert norm_str("  **Harvard  University** ") == "harvarduniversity"
    assert norm_str("A\nB\tC") == "a\nb\tc"
    assert norm_str("nan") == "nan"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("$1,234.5", "1234.5"),
        ("12%", "12%"),
        ("1.2亿", "1.2"),
        ("2024年3月", "2024"),
        ("nan", "NULL"),
        ("abc", "NULL"),
        ("-3.5 m", "-3.5"),
        (".5", ".5"),
        ("12.%", "12.%"),  # upstream's pattern keeps a trailing dot, and the % after it
        ("3.", "3."),
        ("1.2.3", "1.2"),
    ],
)
def test_extract_number(raw, expected):
    assert extract_number(raw) == expected


def test_norm_date_fills_missing_parts_from_frozen_now():
    assert norm_date("2024-03-15") == "2024-03-15"
    assert norm_date("March 2024") == "2024-03-01"
    assert norm_date("2024") == f"2024-{FROZEN_NOW.month:02d}-01"
    later = datetime(2026, 1, 20)
    assert norm_date("2024", later) == "2024-01-01"
    assert norm_date("nan") == f"{FROZEN_NOW.year}-08-01"  # upstream quirk: "nan" is a date
    assert norm_date("not a date at all") == "not a date at all"


def test_exact_match_is_case_insensitive():
    assert exact_match("ABC", "abc") == 1.0
    assert exact_match("19", "19.0") == 0.0


def test_number_near():
    assert number_near("105", "100", 0.05) == 1.0
    assert number_near("106", "100", 0.05) == 0.0
    assert number_near("5%", "0.05", 0.0) == 1.0
    assert number_near("NULL", "NULL", 0.1) == 1.0
    assert number_near("NULL", "3", 0.1) == 0.0
    assert number_near("0.001", "0", 0.5) == 0.0
    assert number_near("0", "0", 0.0) == 1.0


def test_date_near():
    assert date_near("2024-01-01", "2024-01-31") == 1.0
    assert date_near("2024-01-01", "2024-03-01") == 0.0
    assert date_near("gibberish qq", "zzz qq") == 1.0  # both unparsable: a match upstream
    assert date_near("2024-01-01", "zzz qq") == 0.0


def test_url_match_compares_host_sets():
    assert url_match("see https://www.mit.edu/about", "https://www.mit.edu/") == 1.0
    assert url_match("mit.edu", "https://www.mit.edu/") == 0.0
    assert url_match("none", "nothing") == 1.0
    assert url_match("http://a.org http://b.org", "http://b.org/x http://a.org") == 1.0
    # upstream's ASCII URL characters: non-ASCII ends a URL, brackets do not
    assert url_match("官网https://www.pku.edu.cn，北京", "https://www.pku.edu.cn/") == 1.0
    assert url_match("(https://a.org)", "https://a.org/") == 0.0  # host "a.org)"
    with pytest.raises(ValueError, match="IPv6"):  # upstream's urlparse raises too: score 0
        url_match("https://[oops/x", "https://a.org")


def test_dateparser_exceptions_follow_upstream(monkeypatch):
    def broken(value, settings):
        raise OverflowError("date value out of range")

    monkeypatch.setattr("wideseek.eval.widesearch_metrics.dateparser.parse", broken)
    dateparse.cache_clear()
    try:
        assert date_near("x1", "x2") == 1.0  # upstream's date_near catches: both unparsable
        with pytest.raises(OverflowError):  # upstream's norm_date does not: the answer scores 0
            norm_date("x3")
    finally:
        dateparse.cache_clear()


def test_in_match():
    assert in_match("bc", "abcd") == 1.0
    assert in_match("abcd", "bc") == 0.0


def test_lookup_by_name():
    assert preprocess_function("norm_str", None)(" A ") == "a"
    assert cell_metric("llm_judge", "rubric", None) is None
    assert cell_metric("number_near", 0.1, None)("109", "100") == 1.0
    assert cell_metric("number_near", "0.1", None)("109", "100") == 1.0
    assert cell_metric("number_near", None, None)("109", "100") == 0.0
    with pytest.raises(ValueError, match="unknown metric"):
        cell_metric("fuzzy", None, None)
    with pytest.raises(ValueError, match="unknown preprocess"):
        preprocess_function("stem", None)
