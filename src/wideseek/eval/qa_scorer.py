"""Open-domain QA scoring: exact match and token F1, max over the gold answers.

Contract:
- `extract_answer(final_message)`: the content of the last `\\boxed{...}` (braces counted, so
  `\\boxed{f(x) = {1, 2}}` gives `f(x) = {1, 2}`); without a complete box, the text after the
  last `</think>` (the whole message when there is none); stripped either way.
- `normalize_answer`: SQuAD normalisation: lowercase, drop punctuation, drop the articles
  a/an/the, collapse whitespace.
- `exact_match(prediction, golds)` / `token_f1(prediction, golds)`: the best over `golds`.
- `score_qa(final_message, golds)` -> `QAScore` (em, f1, the extracted answer, and `parsed`:
  whether the answer came from a complete, non-empty `\\boxed{}`, the published answer format;
  EM and F1 are scored either way).

Knows nothing about agents, tables or judges.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

from pydantic import BaseModel

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)
_BOX = "\\boxed{"


class QAScore(BaseModel):
    em: float
    f1: float
    answer: str
    parsed: bool = False


def _last_boxed(text: str) -> str | None:
    start = text.rfind(_BOX)
    while start >= 0:
        depth, i = 1, start + len(_BOX)
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            return text[start + len(_BOX) : i - 1]
        start = text.rfind(_BOX, 0, start)  # unclosed box: try the one before it
    return None


def extract_answer(final_message: str) -> str:
    boxed = _last_boxed(final_message)
    if boxed is not None:
        return boxed.strip()
    _, marker, after = final_message.rpartition("</think>")
    return (after if marker else final_message).strip()


def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _f1(prediction: str, gold: str) -> float:
    pred_tokens, gold_tokens = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred_tokens), common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    pred = normalize_answer(prediction)
    return max((float(pred == normalize_answer(g)) for g in golds), default=0.0)


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    return max((_f1(prediction, g) for g in golds), default=0.0)


def score_qa(final_message: str, golds: Sequence[str]) -> QAScore:
    answer = extract_answer(final_message)
    parsed = bool((_last_boxed(final_message) or "").strip())
    return QAScore(
        em=exact_match(answer, golds), f1=token_f1(answer, golds), answer=answer, parsed=parsed
    )
