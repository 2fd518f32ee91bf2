"""`wideseek eval ...` and `wideseek report`: real runner, scorer and HTTP engine against a fake
server that plays a fixed policy over a small corpus."""

from __future__ import annotations

import json

import pytest

from fake_openai import FakeOpenAIServer, chat_reply
from fake_policy import COUNTRIES, CapitalsPolicy, question, write_corpus
from wideseek.cli import main
from wideseek.eval.runner import read_results


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as e:
        main(argv)
    return int(e.value.code)


def write_benchmark(tmp_path, groups: list[list[str]]):
    """A WideSearch-format task file and gold CSVs (one task per group of countries)."""
    gold = tmp_path / "gold"
    gold.mkdir()
    evaluation = {
        "unique_columns": ["country"],
        "required": ["country", "capital"],
        "eval_pipeline": {"capital": {"preprocess": ["norm_str"], "metric": ["exact_match"]}},
    }
    with (tmp_path / "tasks.jsonl").open("w") as f:
        for n, names in enumerate(groups):
            iid = f"t{n}"
            record = {"instance_id": iid, "query": question(names), "language": "en",
                      "evaluation": json.dumps(evaluation)}  # fmt: skip
            f.write(json.dumps(record) + "\n")
            rows = "\n".join(f"{c},{COUNTRIES[c]}" for c in names)
            (gold / f"{iid}.csv").write_text(f"Country,Capital\n{rows}\n")
    return tmp_path / "tasks.jsonl", gold


def test_eval_widesearch_scores_resumes_and_reports(tmp_path, capsys):
    tasks, gold = write_benchmark(tmp_path, [["Chile", "Peru"], ["Bolivia", "Ecuador", "Peru"]])
    corpus = write_corpus(tmp_path / "corpus.jsonl")
    out = tmp_path / "run"
    with FakeOpenAIServer(responder=CapitalsPolicy()) as srv:
        argv = ["eval", "widesearch", "--tasks", str(tasks), "--gold-dir", str(gold),
                "--engine", srv.base_url, "--corpus", str(corpus), "--trials", "2",
                "--out", str(out)]  # fmt: skip
        assert run(argv) == 0
        generations = [r for r in srv.requests if r.path.endswith("/chat/completions")]
        assert run(argv) == 0  # resumed: nothing left to do
        assert [r for r in srv.requests if r.path.endswith("/chat/completions")] == generations
    rows = read_results(out)
    assert sorted((r.instance_id, r.trial) for r in rows) == [
        ("t0", 0), ("t0", 1), ("t1", 0), ("t1", 1),
    ]  # fmt: skip
    assert all(r.scores["item_f1"] == 1.0 and r.scores["success"] for r in rows)
    assert {r.instance_id: r.n_subagents for r in rows} == {"t0": 2, "t1": 3}
    assert "item_f1" in capsys.readouterr().out
    assert run(["report", str(out), "--no-plots"]) == 0
    report = (out / "report.md").read_text()
    assert "exact_match | 1.000" in report


def test_eval_widesearch_filters_and_bad_ids(tmp_path, capsys):
    tasks, gold = write_benchmark(tmp_path, [["Chile"], ["Peru"]])
    corpus = write_corpus(tmp_path / "corpus.jsonl")
    with FakeOpenAIServer(responder=CapitalsPolicy()) as srv:
        base = ["eval", "widesearch", "--tasks", str(tasks), "--gold-dir", str(gold),
                "--engine", srv.base_url, "--corpus", str(corpus)]  # fmt: skip
        assert run([*base, "--ids", "t1", "--out", str(tmp_path / "r1")]) == 0
        assert [r.instance_id for r in read_results(tmp_path / "r1")] == ["t1"]
        assert run([*base, "--ids", "nope", "--out", str(tmp_path / "r2")]) == 1
        assert "unknown task ids: nope" in capsys.readouterr().err
        (gold / "t0.csv").unlink()  # refused before any agent runs
        asked = len(srv.requests)
        assert run([*base, "--out", str(tmp_path / "r3")]) == 1
        assert f"{gold}: no gold table for 1 task(s): t0" in capsys.readouterr().err
        assert len(srv.requests) == asked and not (tmp_path / "r3").exists()
        # the same directory with other settings is refused, not mixed
        assert run([*base, "--ids", "t1", "--mode", "single", "--out", str(tmp_path / "r1")]) == 1
        assert "other settings" in capsys.readouterr().err


def test_eval_qa_exact_match(tmp_path):
    data = tmp_path / "qa.jsonl"
    data.write_text(
        json.dumps({"id": "a", "question": "Capital of Peru?", "golden_answers": ["Lima"]})
        + "\n"
        + json.dumps({"id": "b", "question": "Capital of Chile?", "golden_answers": ["Santiago"]})
        + "\n"
    )
    corpus = write_corpus(tmp_path / "corpus.jsonl")

    def answer(endpoint, body):  # a single agent that answers at once, right for Peru only
        return chat_reply("The answer is \\boxed{Lima}.")

    with FakeOpenAIServer(responder=answer) as srv:
        code = run(["eval", "qa", "--data", str(data), "--mode", "single", "--engine",
                    srv.base_url, "--corpus", str(corpus), "--out", str(tmp_path / "qa")],
                   )  # fmt: skip
    assert code == 0
    scores = {r.instance_id: r.scores["em"] for r in read_results(tmp_path / "qa")}
    assert scores == {"a": 1.0, "b": 0.0}


def test_eval_qa_bad_record_is_one_line(tmp_path, capsys):
    data = tmp_path / "qa.jsonl"
    data.write_text('{"question": "no answers"}\n')
    assert run(["eval", "qa", "--data", str(data), "--engine", "http://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err.strip()
    assert "qa.jsonl:1" in err and "\n" not in err


def test_eval_world_runs_a_bundled_suite(tmp_path):
    with FakeOpenAIServer(responder=lambda e, b: chat_reply("no idea")) as srv:
        code = run(["eval", "world", "--suite", "deep", "--split", "dev", "--limit", "2",
                    "--engine", srv.base_url, "--out", str(tmp_path / "w")])  # fmt: skip
    assert code == 0
    rows = read_results(tmp_path / "w")
    assert len(rows) == 2 and all(r.scores["em"] == 0.0 for r in rows)
