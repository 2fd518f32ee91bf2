"""The real WideSearch gold_answers: every gold table, rendered as a perfect markdown answer, is
scored; and `wideseek score` runs end to end on a few real tasks.

Data: `<repo>/../shared/widesearch` (override with WIDESEEK_WIDESEARCH_DIR); skipped if absent.
"""

import json
import os
from pathlib import Path

import pytest

from fake_judge_server import FakeJudgeServer
from wideseek.cli import main
from wideseek.eval.judges import OfflineJudge
from wideseek.eval.table_extract import render_markdown_table
from wideseek.eval.widesearch_data import load_benchmark
from wideseek.eval.widesearch_scorer import score_widesearch

DATA = Path(
    os.environ.get(
        "WIDESEEK_WIDESEARCH_DIR",
        Path(__file__).resolve().parents[1].parent / "shared" / "widesearch",
    )
)
pytestmark = pytest.mark.skipif(
    not (DATA / "widesearch.jsonl").exists(), reason=f"WideSearch data not found at {DATA}"
)

# With the offline judge, 195/200 perfect answers succeed. The 5 failures, each understood:
# - ws_en_070, ws_zh_002: gold `requirements` / `入学要求` cells contain `|` ("TOEFL: 80 |
#   IELTS: 6.0"). The official parser has no escape for `|` inside a cell, so the rendered
#   answer writes `/`; the offline judge compares literally, so those llm_judge cells (12 of 32
#   rows) are wrong. A semantic judge would accept them.
# - ws_zh_006 (2 rows), ws_zh_081 (4 rows): gold keys start with `"` (`"33"五粮液礼盒`); the
#   answer side goes through read_csv quoting, which strips the quotes (`33五粮液礼盒`), so the
#   normalised keys differ, the offline key alignment cannot map them and the rows do not join
#   (ws_zh_081 also loses an llm_judge cell of such a row). SCORER.md §3.4.
# - ws_zh_068: two `exact_match` columns hold multi-line gold cells; `norm_str` keeps `\n`, a
#   markdown row cannot, so 12 of 32 rows fail exact_match. No judge can repair this (§3.4).
# SCORER.md's 7 oracle failures ws_en_093, ws_zh_029, ws_zh_069, ws_zh_088 (multi-line or
# space-padded key cells) succeed here because offline key alignment ignores whitespace.
OFFLINE_FAILURES = {"ws_en_070", "ws_zh_002", "ws_zh_006", "ws_zh_068", "ws_zh_081"}

# SCORER.md §3.4's oracle (every llm_judge cell right, empty key maps): 193/200, these 7 fail.
ORACLE_FAILURES = {
    "ws_en_093",
    "ws_zh_006",
    "ws_zh_029",
    "ws_zh_068",
    "ws_zh_069",
    "ws_zh_081",
    "ws_zh_088",
}


class OracleJudge(OfflineJudge):
    async def align(self, candidates, reference):
        return {}

    async def grade(self, criterion, responses, targets):
        return [1.0] * len(responses)


@pytest.fixture(scope="module")
def gold_answers():
    return [(task, gold, render_markdown_table(gold)) for task, gold in load_benchmark(DATA)]


async def _failures(gold_answers, judge):
    failed = set()
    for task, gold, answer in gold_answers:
        score = await score_widesearch(task, answer, gold, judge)
        if not score.success:
            failed.add(task.id)
            assert score.item_f1 > 0.9, (task.id, score.msg)  # near misses, not breakage
    return failed


async def test_gold_answers_with_the_offline_judge(gold_answers):
    assert len(gold_answers) == 200
    assert await _failures(gold_answers, OfflineJudge()) == OFFLINE_FAILURES  # 195 / 200 succeed


async def test_gold_answers_with_scorer_md_oracle_judge(gold_answers):
    assert await _failures(gold_answers, OracleJudge()) == ORACLE_FAILURES  # 193 / 200 succeed


def test_score_command_end_to_end(gold_answers, tmp_path, capsys, monkeypatch):
    answers = {task.id: answer for task, _, answer in gold_answers}
    lines = [
        {"instance_id": "ws_en_001", "trial": 0, "response": answers["ws_en_001"]},
        {"instance_id": "ws_en_001", "trial": 1, "response": "Sorry, no table."},
        {"instance_id": "ws_zh_068", "response": answers["ws_zh_068"]},
    ]
    responses = tmp_path / "responses.jsonl"
    responses.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))
    out = tmp_path / "scores.jsonl"
    base = ["score", "--tasks", str(DATA / "widesearch.jsonl")]
    base += ["--gold-dir", str(DATA / "widesearch_gold")]
    with pytest.raises(SystemExit) as done:
        main([*base, "--responses", str(responses), "--out", str(out)])
    assert done.value.code == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(r["instance_id"], r["trial"], r["success"]) for r in rows] == [
        ("ws_en_001", 0, True),
        ("ws_en_001", 1, False),
        ("ws_zh_068", 0, False),
    ]
    assert rows[1]["msg"] == "no markdown table in the response"
    assert set(rows[0]) == {
        "instance_id", "trial", "item_precision", "item_recall", "item_f1",
        "row_precision", "row_recall", "row_f1", "success", "msg",
    }  # fmt: skip
    summary = capsys.readouterr().out
    # the benchmark's figures, as `eval` reports them: ws_en_001 succeeds in 1 of 2 trials,
    # ws_zh_068 in none, so success Avg@N = (0.5 + 0) / 2 and Pass@N = 1 / 2
    overall = next(line for line in summary.splitlines() if "all" in line).split()
    assert "0.2500" in overall and "0.5000" in overall
    assert any(line.split()[1:2] == ["zh"] for line in summary.splitlines())

    # the same through the LLM judge path, over HTTP to a loopback server answering offline;
    # model and server from the environment
    llm_out = tmp_path / "llm_scores.jsonl"
    with FakeJudgeServer() as server:
        monkeypatch.setenv("WIDESEEK_JUDGE_MODEL", "m")
        monkeypatch.setenv("WIDESEEK_JUDGE_BASE_URL", server.base_url)
        cache = ["--judge-cache", str(tmp_path / "cache.db")]
        with pytest.raises(SystemExit) as done:
            main(
                [
                    *base,
                    "--responses",
                    str(responses),
                    "--out",
                    str(llm_out),
                    "--judge",
                    "llm",
                    *cache,
                ]
            )
        assert done.value.code == 0
        assert server.requests > 0
        assert [json.loads(x) for x in llm_out.read_text().splitlines()] == rows
        # a judge that fails (a flag overrides the environment): scores are still written,
        # then one line and exit code 1; a fresh cache, so nothing is a hit
        judge = ["--judge", "llm", "--judge-base-url", server.base_url + "/missing"]
        cache = ["--judge-cache", str(tmp_path / "fresh.db")]
        with pytest.raises(SystemExit) as done:
            main([*base, "--responses", str(responses), "--out", str(llm_out), *judge, *cache])
    assert done.value.code == 1
    assert len(llm_out.read_text().splitlines()) == 3
    assert capsys.readouterr().err.startswith("error: 2 answer(s) scored 0, judge error:")

    with pytest.raises(SystemExit) as done:
        main([*base, "--responses", str(responses), "--out", str(tmp_path / "no" / "x.jsonl")])
    assert done.value.code == 1
    assert "cannot write scores" in capsys.readouterr().err

    responses.write_text('{"instance_id": "ws_xx_999", "response": "x"}\n')
    with pytest.raises(SystemExit) as done:
        main([*base, "--responses", str(responses)])
    assert done.value.code == 1
    assert capsys.readouterr().err.strip() == (
        "error: 1 answer(s) name unknown instance ids: ws_xx_999"
    )
