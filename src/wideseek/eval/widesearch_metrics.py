"""The per-cell preprocess functions and deterministic metrics of the official WideSearch scorer.

Contract (SCORER.md §2): every function takes the *stringified* cell (`"nan"`, `"3.0"`,
`"True"` ...) and behaves as the official one at HEAD, quirks included:

- `norm_str`: lowercase, strip, delete ASCII spaces and `*` (newlines and tabs survive).
- `extract_number`: first signed decimal (optional `%`) after removing `,`; `"NULL"` if none.
  A trailing dot belongs to the number, as upstream's pattern has it (`12.%` stays `12.%`).
- `norm_date`: dateparser with day-of-month "first"; `YYYY-MM-DD` or the input unchanged. An
  exception inside dateparser propagates (upstream does not catch it: the answer scores 0).
- `exact_match`, `number_near`, `date_near`, `url_match`, `in_match`: 1.0 or 0.0.
- `url_match` finds URLs with upstream's ASCII character set (letters, digits, `!` and the
  range `$`..`_`), so a URL ends at a space, `"`, `#`, `{|}~` or any non-ASCII character
  (`，` in Chinese text), and includes `()<>[]`; an unbalanced `[` in a host makes `urlparse`
  raise, which upstream (and hence we) score as 0 for the whole answer.

dateparser fills missing date parts from "now"; every date function takes `now` so a frozen
clock (`FROZEN_NOW`) makes scores reproducible, and `now=None` reads the real clock as the
official scorer does. This module knows nothing about tables, joins or judges: `llm_judge`
is graded per column by a Judge in `widesearch_scorer`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from urllib.parse import urlparse

import dateparser

# Just after the official scorer's last code change (Aug 2025): a neutral, fixed "today".
FROZEN_NOW = datetime(2025, 8, 15)

_NUMBER = re.compile(r"[-+]?(?:\d*\.\d+|\d+\.?\d*)%?")
_URL = re.compile(r"https?://[!$-_a-z]+")  # `$-_` is a range: $ % & ' ( ) ... Z [ \ ] ^ _
DATE_NEAR_DAYS = 31


def norm_str(value: str) -> str:
    return value.lower().strip().replace(" ", "").replace("*", "")


def extract_number(value: str) -> str:
    match = _NUMBER.search(value.replace(",", ""))
    return match.group(0) if match else "NULL"


@lru_cache(maxsize=65536)
def dateparse(value: str, now: datetime | None = FROZEN_NOW) -> datetime | None:
    """dateparser with the official settings; `now` is dateparser's RELATIVE_BASE. May raise."""
    settings: dict[str, object] = {"PREFER_DAY_OF_MONTH": "first"}
    if now is not None:
        settings["RELATIVE_BASE"] = now
    return dateparser.parse(value, settings=settings)


def parse_date(value: str, now: datetime | None = FROZEN_NOW) -> datetime | None:
    """`dateparse`, with any exception counting as unparsable (as in upstream's `date_near`)."""
    try:
        return dateparse(value, now)
    except Exception:
        return None


def norm_date(value: str, now: datetime | None = FROZEN_NOW) -> str:
    parsed = dateparse(value, now)  # not caught, as upstream: the scorer turns it into a 0
    return parsed.strftime("%Y-%m-%d") if parsed else value


def exact_match(response: str, target: str) -> float:
    return float(response.lower() == target.lower())


def _as_number(value: str) -> float | None:
    try:
        if "%" in value:
            return float(value.replace("%", "")) / 100
        return float(value)
    except ValueError:
        return None


def number_near(response: str, target: str, tolerance: float | None = 0.0) -> float:
    """Relative tolerance on the target; two unparsable values match only if identical."""
    r, t = _as_number(response), _as_number(target)
    if r is None or t is None:
        return float(r is None and t is None and response == target)
    return float(abs(r - t) <= abs(t) * float(tolerance or 0.0))


def date_near(response: str, target: str, now: datetime | None = FROZEN_NOW) -> float:
    """Within 31 days; both unparsable counts as a match (official behaviour)."""
    r, t = parse_date(response, now), parse_date(target, now)
    if r is None and t is None:
        return 1.0
    if r is None or t is None:
        return 0.0
    return float(abs((r - t).days) <= DATE_NEAR_DAYS)


def _hosts(value: str) -> set[str]:
    return {urlparse(u).netloc for u in _URL.findall(value)}


def url_match(response: str, target: str) -> float:
    """Same set of URL hosts; no URL on either side is two empty sets, hence a match."""
    return float(_hosts(response) == _hosts(target))


def in_match(response: str, target: str) -> float:
    return float(response in target)


def _tolerance(criterion: object) -> float:
    """`number_near`'s criterion as a float; absent or unusable means exact (0.0)."""
    try:
        return float(criterion)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0


def preprocess_function(name: str, now: datetime | None) -> Callable[[str], str]:
    """The preprocess named in an `eval_pipeline`; unknown names are a ValueError."""
    if name == "norm_str":
        return norm_str
    if name == "extract_number":
        return extract_number
    if name == "norm_date":
        return lambda value: norm_date(value, now)
    raise ValueError(f"unknown preprocess {name!r}")


def cell_metric(
    name: str, criterion: object, now: datetime | None
) -> Callable[[str, str], float] | None:
    """The per-cell metric named in an `eval_pipeline`; None for `llm_judge` (graded per column)."""
    if name == "llm_judge":
        return None
    if name == "exact_match":
        return exact_match
    if name == "in_match":
        return in_match
    if name == "url_match":
        return url_match
    if name == "number_near":
        return lambda r, t: number_near(r, t, _tolerance(criterion))
    if name == "date_near":
        return lambda r, t: date_near(r, t, now)
    raise ValueError(f"unknown metric {name!r}")
