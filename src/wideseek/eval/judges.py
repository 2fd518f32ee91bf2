"""Judges: what the WideSearch scorer asks when strings must be compared by meaning.

Contract. A `Judge` answers two questions, both async because a real judge is remote:

- `align(candidates, reference)`: map predicted strings (column names, key values) to the
  reference spelling they mean; unmapped candidates are left out of the map.
- `grade(criterion, responses, targets)`: one 0/1 score per (response, target) pair of an
  `llm_judge` column, graded in one batch per column as the official scorer does.

Two judges:

- `OfflineJudge`: deterministic and instant, exactly the project's shared definition: a value
  is normalised by lowercasing and removing all whitespace; a cell is correct iff the
  normalised values are equal, or both are non-empty and one contains the other; alignment
  maps a candidate to the first reference whose normalised form is equal.
- `LLMJudge`: builds our own prompts for any `Completer` ("anything that completes a prompt",
  e.g. `judge_client.ChatCompleter`), and parses the last fenced ```` ```json ```` object of the
  reply. A reply without parsable JSON means an empty map / all-zero column, as upstream.
  Grades are used as returned, as upstream: `true`/`false` count 1/0, `null` is NaN (pandas
  skips it in upstream's row minimum and item sum), a missing idx is 0, and any other value
  (a string, a list) raises `JudgeError` (upstream the sum fails and the task scores 0).

This module knows nothing about tables, pandas or HTTP.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Protocol

from wideseek.errors import WideseekError


class JudgeError(WideseekError, RuntimeError):
    """The judge could not answer (server unreachable after retries, unusable reply)."""


class Judge(Protocol):
    async def align(self, candidates: Sequence[str], reference: Sequence[str]) -> dict[str, str]:
        """Map candidate strings to the reference strings they denote."""
        ...

    async def grade(
        self, criterion: str, responses: Sequence[str], targets: Sequence[str]
    ) -> list[float]:
        """One score per (response, target) pair: 0 or 1, or NaN for no verdict."""
        ...


class Completer(Protocol):
    """Anything that completes a prompt; None when the model gave no content."""

    async def complete(self, prompt: str) -> str | None: ...


def offline_normalise(value: str) -> str:
    return "".join(value.lower().split())


class OfflineJudge:
    """The deterministic judge (no network), defined identically across tools."""

    async def align(self, candidates: Sequence[str], reference: Sequence[str]) -> dict[str, str]:
        first_by_norm: dict[str, str] = {}
        for ref in reference:
            first_by_norm.setdefault(offline_normalise(ref), ref)
        mapping: dict[str, str] = {}
        for cand in candidates:
            target = first_by_norm.get(offline_normalise(cand))
            if target is not None:
                mapping[cand] = target
        return mapping

    async def grade(
        self, criterion: str, responses: Sequence[str], targets: Sequence[str]
    ) -> list[float]:
        return [_offline_cell(r, t) for r, t in zip(responses, targets, strict=True)]


def _offline_cell(response: str, target: str) -> float:
    r, t = offline_normalise(response), offline_normalise(target)
    if r == t:
        return 1.0
    return float(bool(r) and bool(t) and (r in t or t in r))


# Our own prompt texts: the same questions as upstream (SCORER.md §5.1), differently worded.
ALIGN_PROMPT = """You match names across two lists.

For every string in CANDIDATES, find the string in REFERENCE that denotes the same thing \
(same entity or same column meaning; ignore case, spacing, markdown such as ** and small \
spelling variants). Identical strings always match. Leave out candidates that have no \
counterpart; never invent reference strings.

CANDIDATES = {candidates}
REFERENCE = {reference}

Reply with one JSON object mapping each matched candidate, copied exactly, to its reference \
string, copied exactly, inside a ```json fenced block."""

GRADE_PROMPT = """You are grading cells of a table produced by a research assistant against \
the reference table.

Grading rubric:
<<<rubric
{criterion}
rubric>>>

Each entry below has the assistant's value ("response") and the reference value ("target"), \
both already normalised (lowercase, spaces removed):
<<<cells
{cells}
cells>>>

Compare each entry using the rubric. Briefly reason about the entries if useful, then give \
the final verdict as one JSON object mapping every key (idx_0, idx_1, ...) to 1 if the \
response is correct and 0 otherwise, inside a ```json fenced block."""

# Non-greedy braces, as upstream: only flat objects parse, which is all the prompts ask for.
_JSON_BLOCK = re.compile(r"```json\s*(\{.*?\})\s*```", re.DOTALL)


def parse_last_json_object(text: str | None) -> dict[str, object] | None:
    """The last fenced ```json {...}``` object in `text`, or None."""
    if not text:
        return None
    blocks = _JSON_BLOCK.findall(text)
    if not blocks:
        return None
    try:
        parsed = json.loads(blocks[-1])
    except json.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


class LLMJudge:
    """Alignment and column grading by a language model behind any `Completer`."""

    def __init__(self, completer: Completer) -> None:
        self.completer = completer

    async def align(self, candidates: Sequence[str], reference: Sequence[str]) -> dict[str, str]:
        prompt = ALIGN_PROMPT.format(candidates=list(candidates), reference=list(reference))
        parsed = parse_last_json_object(await self.completer.complete(prompt)) or {}
        return {str(k): str(v) for k, v in parsed.items()}

    async def grade(
        self, criterion: str, responses: Sequence[str], targets: Sequence[str]
    ) -> list[float]:
        cells = {
            f"idx_{i}": {"response": r, "target": t}
            for i, (r, t) in enumerate(zip(responses, targets, strict=True))
        }
        prompt = GRADE_PROMPT.format(criterion=criterion, cells=cells)
        parsed = parse_last_json_object(await self.completer.complete(prompt))
        if parsed is None:
            return [0.0] * len(cells)
        scores: list[float] = []
        for key in cells:
            value = parsed.get(key, 0)
            if value is None:
                scores.append(math.nan)
            elif isinstance(value, int | float):  # bool is an int: True counts 1
                scores.append(float(value))
            else:
                raise JudgeError(f"judge gave a non-numeric grade for {key}: {value!r}")
        return scores
