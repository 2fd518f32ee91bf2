"""QA scoring: SQuAD-style normalisation, EM / token F1 over several golds, answer extraction."""

import pytest

from wideseek.eval.qa_scorer import (
    exact_match,
    extract_answer,
    normalize_answer,
    score_qa,
    token_f1,
)


def test_normalize_answer():
    assert normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert normalize_answer("An apple, a day") == "apple day"
    assert normalize_answer("theater") == "theater"  # articles only as whole words


def test_exact_match_takes_the_best_gold():
    assert exact_match("eiffel tower", ["Tour Eiffel", "The Eiffel Tower"]) == 1.0
    assert exact_match("Paris", []) == 0.0


def test_token_f1():
    assert token_f1("Barack Obama", ["Obama"]) == pytest.approx(2 / 3)
    assert token_f1("Barack Obama", ["Michelle", "Barack Obama"]) == 1.0
    assert token_f1("", ["x"]) == 0.0


@pytest.mark.parametrize(
    ("message", "answer"),
    [
        ("<think>maybe \\boxed{1}</think> So \\boxed{Paris}.", "Paris"),
        ("\\boxed{f(x) = {1, 2}} ", "f(x) = {1, 2}"),
        ("\\boxed{ok} then \\boxed{unclosed", "ok"),
        ("<think>reasoning</think>\n  Paris  ", "Paris"),
        ("  just text ", "just text"),
    ],
)
def test_extract_answer(message, answer):
    assert extract_answer(message) == answer


def test_score_qa():
    s = score_qa("<think>hmm</think>The answer is \\boxed{the Eiffel Tower}", ["Eiffel Tower"])
    assert (s.em, s.f1, s.answer) == (1.0, 1.0, "the Eiffel Tower")
