r"""Markdown answer -> pandas DataFrame, the way the official WideSearch scorer reads answers.

Contract (SCORER.md §1.4-§1.5, HEAD behaviour):

1. Take the first ```` ```markdown ... ``` ```` block (case-sensitive tag, non-greedy). With
   `block="last"` take the last block of the text after the last `</think>` instead: the
   WideSeek-R1 answer format. Without any block, fall back to the first run of consecutive
   lines starting with `|` inside the span from the first to the last `|` (needs >= 4 pipes).
2. The header line loses all spaces and is lowercased; separator rows (only `| - :`) and lines
   without `|` are dropped; every cell is stripped.
3. `pandas.read_csv(sep="|")` with its defaults (quoting, NA tokens, type inference); columns
   named `Unnamed...` (outer pipes, blank headers) are dropped.

Bare carriage returns (a `\r` not ending a line, e.g. a gold cell's `\r\n` pasted into one
row): lines are split on `\n` only, so such a `\r` reaches pandas, whose C tokenizer ends a
record there. By default (`lenient_tables=False`) we read it as the official scorer does under
its pinned pandas 2.3.1 (SCORER.md §1.5, §5.4): a bare `\r` followed by a blank sends that
tokenizer into a loop that ends in "Buffer overflow caught", a parse failure, so the task
scores 0 (§4.1); any other bare `\r` splits the row in two. pandas with the fix
pandas-dev/pandas#64540 (3.1.1 here) no longer loops, so the loop is detected here rather
than left to the installed pandas.
`lenient_tables=True` departs from the official scorer: every `\r` is read as a space.

Any parser failure is an `TableParseError` with a one-line reason; no table at all is `None`.
This module knows nothing about tasks, gold tables or metrics.
"""

from __future__ import annotations

import io
import re
from typing import Literal

import pandas as pd

from wideseek.errors import DataError

TableBlock = Literal["first", "last"]

_MARKDOWN_BLOCK = re.compile(r"```markdown(.*?)```", re.DOTALL)
_SEPARATOR_ROW = re.compile(r"^[|\-: ]*$")  # spaces too: cells may be padded before splitting


class TableParseError(DataError):
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


def _clean_table_text(text: str, lenient_tables: bool = False) -> str:
    if lenient_tables:
        # `\r\n` line ends become trailing spaces, stripped below like the `\r` they replace
        text = text.replace("\r", " ")
    lines = text.strip().split("\n")
    lines[0] = lines[0].replace(" ", "").lower()
    kept: list[str] = []
    for raw in lines:
        line = raw.strip()
        if "|" not in line or _SEPARATOR_ROW.match(line):
            continue
        kept.append("|".join(cell.strip() for cell in line.split("|")))
    return "\n".join(kept)


# States of pandas' C tokenizer (tokenizer.c) reachable under read_csv(sep="|") defaults.
_RECORD, _FIELD, _IN_FIELD, _QUOTED, _QUOTE_IN_QUOTED, _CR, _CR_NOP, _BLANK_LINE = range(8)
_HEADER_RECORDS = 2  # TextReader tokenizes the header and one row first, then resumes


def _pinned_pandas_loops(text: str) -> bool:
    r"""Whether pandas 2.3.1's C tokenizer never gets past some bare `\r` of `text`.

    A bare `\r` ends a record; if the next one starts with a blank, the tokenizer takes it for
    a blank line and, at the first non-blank, backs up to the last `\n` (or to where the current
    read began) to parse the line as data. Before pandas-dev/pandas#64540 that back-up ignored
    `\r`, so it landed in front of the same `\r` and went round again, adding rows until a
    buffer overflowed. This walks the same state machine (no values) and reports a back-up to
    a place already backed up to. The one escape modelled: the read restarts after record 2,
    so a `\r` ending the first data row is passed. Not modelled: pandas 2.3.1 also gets out
    after ~10**5 copies of the looping row when its buffers keep growing (the row is short and
    mostly padding; 43 of 2,885 synthetic looping answers), scored as the failure here; and
    quotes around a bare `\r` can make the two pandas parse a table differently.
    """
    if "\r" not in text:  # without one, no record starts with a blank (lines are stripped)
        return False
    state, records, start, i, seen = _RECORD, 0, 0, 0, set()

    def end_record(resume: int) -> None:
        nonlocal records, start
        records += 1
        if records == _HEADER_RECORDS:
            start = resume

    while i < len(text):
        c = text[i]
        if state == _RECORD:  # skip_blank_lines: empty and blank-looking lines are skipped
            if c in " \t":
                state = _BLANK_LINE
            elif c == "\r":
                state = _CR_NOP
            elif c != "\n":
                state = _FIELD
                continue  # the same character starts a field
        elif state in (_FIELD, _IN_FIELD, _QUOTE_IN_QUOTED):
            if c == "\n":
                end_record(i + 1)
                state = _RECORD
            elif c == "\r":
                state = _CR
            elif c == "|":
                state = _FIELD
            elif c == '"' and state != _IN_FIELD:  # opens a quote, or is a doubled quote
                state = _QUOTED
            else:
                state = _IN_FIELD
        elif state == _QUOTED:
            if c == '"':
                state = _QUOTE_IN_QUOTED
        elif state == _CR:
            if c in "\n|":
                end_record(i + 1)
                state = _RECORD if c == "\n" else _FIELD
            else:  # `\r` alone ended the record; this character starts the next one
                end_record(i)
                state = _RECORD
                continue
        elif state == _CR_NOP:
            state = _RECORD
            if c not in "\n|":
                continue
        elif c == "\n":  # _BLANK_LINE from here on
            state = _RECORD
        elif c == "\r":
            state = _CR_NOP
        elif c not in " \t":  # not a blank line after all: back up and parse it as data
            back = i
            while back > start and text[back] != "\n":
                back -= 1
            if text[back] == "\n":
                back += 1
            key = (back, start, records >= _HEADER_RECORDS)
            if key in seen:
                return True
            seen.add(key)
            state, i = _FIELD, back
            continue
        i += 1
    return False


def parse_table_text(text: str, lenient_tables: bool = False) -> pd.DataFrame:
    """Parse markdown table text with pandas as the official scorer does (see the module notes
    for `lenient_tables`)."""
    cleaned = _clean_table_text(text, lenient_tables)
    if not cleaned:
        raise TableParseError("table has no line with '|'")
    if not lenient_tables and _pinned_pandas_loops(cleaned):
        raise TableParseError(
            "markdown table does not parse: Error tokenizing data. C error: Buffer overflow "
            "caught - possible malformed input file (a bare \\r before a blank: the official "
            "scorer's pandas 2.3.1 loops on it)"
        )
    try:
        df = pd.read_csv(io.StringIO(cleaned), sep="|")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TableParseError(f"markdown table does not parse: {first_line}") from e
    keep = [c for c in df.columns if not str(c).startswith("Unnamed")]
    return df[keep]


def extract_table(
    answer: str, block: TableBlock = "first", lenient_tables: bool = False
) -> pd.DataFrame | None:
    """The answer's table as a DataFrame (raw headers), None when the answer has no table."""
    text = find_table_text(answer, block)
    return None if text is None else parse_table_text(text, lenient_tables)


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
