"""eval/paired: two runs of the same tasks compared task by task, and `report --against`."""

import pytest

from test_eval_runner import INFO, TASKS, make_run_one
from wideseek.cli import main
from wideseek.eval.paired import paired_difference, paired_lines
from wideseek.eval.runner import ResultRow, run_benchmark


def rows(scores: dict[str, list[float]], metric: str = "item_f1") -> list[ResultRow]:
    return [
        ResultRow(instance_id=task, trial=trial, scores={metric: value})
        for task, values in scores.items()
        for trial, value in enumerate(values)
    ]


def test_tasks_pair_by_id_with_their_mean_over_trials():
    a = rows({"t1": [1.0, 0.5], "t2": [0.2], "t3": [0.4], "only-a": [1.0]})
    b = rows({"t1": [0.25], "t2": [0.6], "t3": [0.4], "only-b": [0.0]})
    d = paired_difference(a, b, "item_f1")
    assert (d.tasks, d.better, d.worse, d.equal, d.only_one) == (3, 1, 1, 1, 2)
    assert d.mean_a == pytest.approx((0.75 + 0.2 + 0.4) / 3)
    assert d.difference == pytest.approx((0.5 - 0.4 + 0.0) / 3)
    assert d.low <= d.difference <= d.high
    assert d == paired_difference(a, b, "item_f1")  # a fixed seed: the same interval


def test_the_interval_narrows_with_a_consistent_difference_and_not_with_noise():
    n = 40
    base = rows({f"t{i}": [0.5] for i in range(n)}, "em")
    steady = paired_difference(rows({f"t{i}": [0.6] for i in range(n)}, "em"), base, "em")
    assert steady.low == pytest.approx(0.1) and steady.high == pytest.approx(0.1)
    # the same mean difference carried by a few tasks: the interval spans zero
    few = {f"t{i}": [1.0 if i < 4 else 0.0] for i in range(n)}
    zero = rows({f"t{i}": [0.0] for i in range(n)}, "em")
    noisy = paired_difference(rows(few, "em"), zero, "em")
    assert noisy.difference == pytest.approx(0.1) and noisy.low < 0.05 < noisy.high


def test_runs_without_shared_tasks_or_runs_are_errors(tmp_path):
    with pytest.raises(ValueError, match="share no task"):
        paired_difference(rows({"a": [1.0]}), rows({"b": [1.0]}), "item_f1")
    with pytest.raises(ValueError, match="no runs of the same name"):
        one, other = {tmp_path / "wide": rows({"a": [1.0]})}, {tmp_path / "deep": []}
        paired_lines(one, {**other, tmp_path / "x": []}, "A", "B")


async def test_report_against_another_run_prints_and_writes_the_comparison(tmp_path, capsys):
    async def better(task, traj):
        return {"item_f1": 1.0 if task.id in ("t1", "t2") else 0.5}

    async def worse(task, traj):
        return {"item_f1": 0.5}

    for name, score in (("a", better), ("b", worse)):
        run_dir = tmp_path / name / "wide"
        await run_benchmark(TASKS, make_run_one([]), score, run_dir, INFO, show_progress=False)
    with pytest.raises(SystemExit) as done:
        main(["report", str(tmp_path / "a"), "--against", str(tmp_path / "b"), "--no-plots"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "| wide | item_f1 | 4 | 0.750 | 0.500 | +0.250 |" in out and "| 2 / 0 / 2 |" in out
    assert "left out" not in out and "settings differ" not in out  # same tasks, same settings
    assert "| wide | item_f1 | 4 | 0.750 |" in (tmp_path / "a" / "report.md").read_text()
    with pytest.raises(SystemExit) as done:
        main(["report", str(tmp_path / "a"), "--against", str(tmp_path / "missing")])
    assert done.value.code != 0
    assert "missing: not a directory" in capsys.readouterr().err


async def test_the_comparison_names_tasks_left_out_and_settings_that_differ(tmp_path, capsys):
    """Reworded tasks keep their ids and every run's folder is `wide`: the pairing alone would
    compare a run under other limits, on another world or wording, without a word."""

    async def half(task, traj):
        return {"item_f1": 0.5}

    def info(world: str, lead_tokens: int, suite: str, backend: str) -> object:
        agent = {"lead_turns": 4, "lead_response_tokens": lead_tokens, "temperature": 0.0}
        engine = {"base_url": None, "backend": backend}
        extra = {"config": {"agent": agent, "engine": engine}, "world": world}
        return INFO.model_copy(update={"suite": suite, "extra": extra})

    new = info("a0fe5765" + "0" * 56, 768, "world-wide-test", "llama.cpp")
    old = info("c463790a" + "1" * 56, 256, "world-wide-test-reworded", "torch")
    await run_benchmark(TASKS, make_run_one([]), half, tmp_path / "new" / "wide", new,
                        show_progress=False)  # fmt: skip
    await run_benchmark(TASKS[:3], make_run_one([]), half, tmp_path / "old" / "wide", old,
                        show_progress=False)  # fmt: skip
    with pytest.raises(SystemExit) as done:
        main(["report", str(tmp_path / "new"), "--against", str(tmp_path / "old"), "--no-plots"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "| wide | item_f1 | 3 |" in out
    assert "- wide: 1 tasks scored in one run only, left out." in out
    assert (
        "- wide: settings differ (A vs B), so not only the model: suite world-wide-test vs "
        "world-wide-test-reworded, world a0fe5765 vs c463790a, engine llama.cpp vs torch, "
        "lead_response_tokens 768 vs 256."
    ) in out
