"""Judges: the offline definition, LLM-judge prompt/reply handling, and the HTTP client
against a real loopback OpenAI-compatible server (retries, cache, errors)."""

import asyncio
import logging
import math
import sqlite3

import pytest

from fake_judge_server import FakeJudgeServer
from wideseek.eval.judge_cache import TABLE, JudgeCache, cache_key
from wideseek.eval.judge_client import ChatCompleter
from wideseek.eval.judges import JudgeError, LLMJudge, OfflineJudge, parse_last_json_object


async def test_offline_grade_is_equality_or_containment_after_normalising():
    judge = OfflineJudge()
    responses = ["New  York", "new york city", "", "", "Boston", "York"]
    targets = ["newyork", "New York", "", "x", "Cambridge", "New York"]
    assert await judge.grade("any", responses, targets) == [1.0, 1.0, 1.0, 0.0, 0.0, 1.0]


async def test_offline_align_maps_to_first_equal_reference():
    judge = OfflineJudge()
    mapping = await judge.align(
        ["Harvard University", "MIT ", "Yale", "**name**"],
        ["harvard university", "HarvardUniversity", "MIT", "name"],
    )
    assert mapping == {"Harvard University": "harvard university", "MIT ": "MIT"}


class CannedCompleter:
    def __init__(self, reply):
        self.reply = reply
        self.prompts: list[str] = []

    async def complete(self, prompt):
        self.prompts.append(prompt)
        return self.reply


def test_parse_last_json_object():
    text = 'x ```json\n{"a": 1}\n``` then ```json\n{"b": 0}\n```'
    assert parse_last_json_object(text) == {"b": 0}
    assert parse_last_json_object("no json") is None
    assert parse_last_json_object("```json\n{not json}\n```") is None
    assert parse_last_json_object(None) is None


async def test_llm_judge_grades_a_column_in_one_call():
    completer = CannedCompleter('ok\n```json\n{"idx_0": 1, "idx_2": 1}\n```')
    scores = await LLMJudge(completer).grade("rubric R", ["a", "b", "c"], ["a", "x", "c"])
    assert scores == [1.0, 0.0, 1.0]  # a missing idx scores 0
    assert len(completer.prompts) == 1
    assert "rubric R" in completer.prompts[0] and "'idx_2'" in completer.prompts[0]


async def test_llm_judge_failures_follow_upstream():
    assert await LLMJudge(CannedCompleter(None)).grade("r", ["a", "b"], ["a", "b"]) == [0.0, 0.0]
    assert await LLMJudge(CannedCompleter("garbage")).align(["a"], ["a"]) == {}
    with pytest.raises(JudgeError, match="non-numeric"):
        await LLMJudge(CannedCompleter('```json\n{"idx_0": "yes"}\n```')).grade("r", ["a"], ["a"])
    # values are used as returned: booleans count as numbers, null is "no verdict" (NaN)
    reply = CannedCompleter('```json\n{"idx_0": true, "idx_1": false, "idx_2": null}\n```')
    scores = await LLMJudge(reply).grade("r", ["a", "b", "c"], ["a", "b", "c"])
    assert scores[:2] == [1.0, 0.0] and math.isnan(scores[2])


async def test_http_judge_matches_offline_judge_and_retries_on_500(tmp_path):
    with FakeJudgeServer(fail_first=2) as server:
        completer = ChatCompleter(
            "judge-model", server.base_url, cache_path=tmp_path / "c.sqlite", backoff_s=0.01
        )
        judge = LLMJudge(completer)
        candidates, reference = ["Harvard  University", "Yale"], ["harvard university", "MIT"]
        assert await judge.align(candidates, reference) == await OfflineJudge().align(
            candidates, reference
        )
        assert server.requests == 3  # two injected 500s, then success
        responses, targets = ["new york", "boston", "a\nb"], ["New York City", "NYC", "a b"]
        assert await judge.grade("r", responses, targets) == [1.0, 0.0, 1.0]
        await completer.aclose()


async def test_http_judge_cache_makes_rescoring_free(tmp_path, monkeypatch):
    monkeypatch.setenv("WIDESEEK_TEST_JUDGE_KEY", "sk-test")
    cache = tmp_path / "judge.sqlite"
    with FakeJudgeServer() as server:
        for round_ in range(2):
            completer = ChatCompleter(
                "m", server.base_url, cache_path=cache, api_key_env="WIDESEEK_TEST_JUDGE_KEY"
            )
            judge = LLMJudge(completer)
            assert await judge.align(["A b"], ["ab"]) == {"A b": "ab"}
            assert completer.calls == (1 if round_ == 0 else 0)
            await completer.aclose()
        assert server.requests == 1
        assert server.last_authorization == "Bearer sk-test"
        # another model is another cache key
        other = ChatCompleter("m2", server.base_url, cache_path=cache)
        await other.complete("A b")
        assert other.calls == 1
        await other.aclose()


async def test_http_judge_caps_requests_in_flight():
    with FakeJudgeServer(delay_s=0.05) as server:
        completer = ChatCompleter("m", server.base_url, max_concurrency=3)
        await asyncio.gather(*(completer.complete(f"prompt {i}") for i in range(10)))
        await completer.aclose()
    assert server.requests == 10
    assert server.max_in_flight == 3


def test_corrupt_cache_is_moved_aside_and_rebuilt(tmp_path):
    path = tmp_path / "judge.sqlite"
    path.write_bytes(b"this is not a sqlite database at all" * 100)
    cache = JudgeCache(path)
    assert len(cache) == 0
    cache.put("m", "p", "reply")
    assert cache.get("m", "p") == "reply"
    cache.close()
    assert (tmp_path / "judge.sqlite.corrupt").exists()
    assert len(JudgeCache(path)) == 1


def test_cache_failures_after_opening_are_misses_not_crashes(tmp_path, caplog):
    path = tmp_path / "judge.sqlite"
    cache = JudgeCache(path)
    cache.put("m", "p", "reply")
    with sqlite3.connect(path) as other:  # another hand removes the table under it
        other.execute(f"DROP TABLE {TABLE}")
    assert cache.get("m", "p") is None
    cache.put("m", "p", "again")
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    assert path.exists() and not list(tmp_path.glob("*.corrupt*"))  # readable: left in place


def test_replies_cached_by_the_older_layout_are_adopted(tmp_path):
    path = tmp_path / "judge.sqlite"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE completions (key TEXT PRIMARY KEY, model TEXT, text TEXT)")
        old.execute("INSERT INTO completions VALUES (?, 'm', 'old reply')", (cache_key("m", "p"),))
    old.close()
    cache = JudgeCache(path)
    assert cache.get("m", "p") == "old reply" and len(cache) == 1
    cache.close()


async def test_client_errors_are_judge_errors(tmp_path):
    with FakeJudgeServer(fail_first=100) as server:
        completer = ChatCompleter("m", server.base_url, max_retries=2, backoff_s=0.01)
        with pytest.raises(JudgeError, match="HTTP 500 after 3 attempts"):
            await completer.complete("p")
        await completer.aclose()
        wrong_path = ChatCompleter("m", server.base_url + "/nope", backoff_s=0.01)
        with pytest.raises(JudgeError, match="HTTP 404"):
            await wrong_path.complete("p")
        assert wrong_path.calls == 1  # a 4xx is not retried
        await wrong_path.aclose()
    unreachable = ChatCompleter("m", server.base_url, max_retries=1, backoff_s=0.01)
    with pytest.raises(JudgeError, match="after 2 attempts"):
        await unreachable.complete("p")
    await unreachable.aclose()
