"""Markdown answer -> pandas DataFrame, the way the official WideSearch scorer reads answers.

Contract (SCORER.md §1.4-§1.5, HEAD behaviour):

1. Take the first ```` ```markdown ... ``` ```` block (case-sensitive tag, non-greedy). With
   `block="last"` take the last block of the text after the last `</think>` instead: the
   WideSeek-R1 answer format. Without any block, fall back to the first run of consecutive
   lines starting with `|` inside the span from the first to the last `|` (needs >= 4 pipes).
2. The header line loses all spaces and is lowercased; separator rows (only `| - :`) and lines
   without `|` are dropped; every cell is stripped.
3. `pandas.read_csv(sep="|")` with its defaults (quoting, NA tokens, type inference); columns
   named `Unnamed...` (outer pipes, blank headers) are dropped.

Any parser failure is an `TableParseError` with a one-line reason; no table at all is `None`.
This module knows nothing about tasks, gold tables or metrics.
"""

from __future__ import annotations

import io
import re
from typing import Literal

import pandas as pd

TableBlock = Literal["first", "last"]

_MARKDOWN_BLOCK = re.compile(r"```markdown(.*?)```", re.DOTALL)
_SEPARATOR_ROW = re.compile(r"^[|\-: ]*$")  # spaces too: cells may be padded before splitting


class TableParseError(ValueError):
    """The answer holds a table-like text that pandas cannot parse."""


def norm_column(name: str) -> str:
    """Official column-name normalisation: strip, lowercase, delete ASCII spaces only."""
    return name.strip().lower().replace(" ", "")


def _after_think(text: str) -> str:
    marker = "</think>"
    cut = text.rfind(marker)
    return text[cut + len(marker) :] if cut >= 0 else text


def _pipe_run(text: str) -> str | None:
    """The fallback for unfenced answers: the first run of lines that start with `|`."""
    if text.count("|") < 4:
        return None
    first, last = text.index("|"), text.rindex("|")
    start = text.rfind("\n", 0, first) + 1
    end = text.find("\n", last)
    lines = text[start : end if end >= 0 else len(text)].split("\n")
    # The run begins at the first `|` (which may sit mid-line after prose) and continues
    # over the following lines that start with `|`.
    run = [lines[0][lines[0].index("|") :]]
    for line in lines[1:]:
        if not line.startswith("|"):
            break
        run.append(line)
    return "\n".join(run)


def find_table_text(answer: str, block: TableBlock = "first") -> str | None:
    """The raw table text the official scorer would parse, or None when there is none."""
    source = _after_think(answer) if block == "last" else answer
    blocks = _MARKDOWN_BLOCK.findall(source)
    if blocks:
        return blocks[0] if block == "first" else blocks[-1]
    return _pipe_run(source)


def _clean_table_text(text: str) -> str:
    lines = text.strip().split("\n")
    lines[0] = lines[0].replace(" ", "").lower()
    kept: list[str] = []
    for raw in lines:
        line = raw.strip()
        if "|" not in line or _SEPARATOR_ROW.match(line):
            continue
        kept.append("|".join(cell.strip() for cell in line.split("|")))
    return "\n".join(kept)


def parse_table_text(text: str) -> pd.DataFrame:
    """Parse markdown table text with pandas exactly as the official scorer does."""
    cleaned = _clean_table_text(text)
    if not cleaned:
        raise TableParseError("table has no line with '|'")
    try:
        df = pd.read_csv(io.StringIO(cleaned), sep="|")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TableParseError(f"markdown table does not parse: {first_line}") from e
    keep = [c for c in df.columns if not str(c).startswith("Unnamed")]
    return df[keep]


def extract_table(answer: str, block: TableBlock = "first") -> pd.DataFrame | None:
    """The answer's table as a DataFrame (raw headers), None when the answer has no table."""
    text = find_table_text(answer, block)
    return None if text is None else parse_table_text(text)


def render_markdown_table(df: pd.DataFrame) -> str:
    """Render a DataFrame as a fenced markdown table (cells on one line, NaN as empty).

    Used to turn gold tables into perfect answers: values print as pandas holds them (so a
    float column stays float when parsed back); a newline inside a cell becomes a space and
    a `|` becomes `/`, because the official parser has no way to keep either inside a cell.
    """

    def cell(value: object) -> str:
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return ""
        return re.sub(r"[\r\n]+", " ", str(value)).replace("|", "/")

    header = "| " + " | ".join(str(c) for c in df.columns) + " |"
    rule = "|" + "---|" * len(df.columns)
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "```markdown\n" + "\n".join([header, rule, *rows]) + "\n```"
