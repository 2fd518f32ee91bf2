"""The resumable runner and the report, with a scripted agent and a trivial scorer."""

import json

import pytest

from wideseek.errors import UsageError
from wideseek.eval.report import summarize, write_report
from wideseek.eval.runner import RESULTS, TRAJECTORIES, ResultRow, RunInfo, run_benchmark
from wideseek.types import AgentRun, Failure, Task, Trajectory, headline_metric

TASKS = [Task(id=f"t{i}", question=f"q{i}", language="en" if i % 2 else "zh") for i in range(4)]
INFO = RunInfo(suite="toy", mode="multi", profile="wideseek", model="m", trials=2)


def make_run_one(calls):
    async def run_one(task, trial):
        calls.append((task.id, trial))
        traj = Trajectory(task=task, mode="multi", trial=trial)
        lead = AgentRun(agent_id=0, role="lead", prompt=task.question)
        if task.id == "t0":  # flags that the report counts
            lead.failures = [Failure.TURN_LIMIT, Failure.MALFORMED_CALL]
        traj.agents.append(lead)
        traj.final_answer = f"{task.id}:{trial}"
        return traj

    return run_one


async def score(task, traj):
    # task t0 always fails, the others succeed on trial 1 only
    good = task.id != "t0" and traj.trial == 1
    return {"item_f1": 1.0 if good else 0.5, "row_f1": 0.0, "success": good}


async def test_run_resume_and_torn_line(tmp_path):
    calls = []
    rows = await run_benchmark(
        TASKS, make_run_one(calls), score, tmp_path, INFO, show_progress=False
    )
    assert len(rows) == 8 and len(calls) == 8
    # second run: nothing left to do
    calls.clear()
    await run_benchmark(TASKS, make_run_one(calls), score, tmp_path, INFO, show_progress=False)
    assert calls == []
    # kill mid-write: drop the last result and tear the line before it
    lines = (tmp_path / RESULTS).read_text().splitlines()
    (tmp_path / RESULTS).write_text("\n".join(lines[:-2]) + "\n" + lines[-2][:20])
    rows = await run_benchmark(
        TASKS, make_run_one(calls), score, tmp_path, INFO, show_progress=False
    )
    assert len(calls) == 2 and len(rows) == 8
    assert len({(r.instance_id, r.trial) for r in rows}) == 8
    trajs = [json.loads(x) for x in (tmp_path / TRAJECTORIES).read_text().splitlines()]
    assert all(t["scores"] for t in trajs)


async def test_other_settings_refuse_the_same_dir(tmp_path):
    await run_benchmark(TASKS[:1], make_run_one([]), score, tmp_path, INFO, show_progress=False)
    other = INFO.model_copy(update={"mode": "single"})
    with pytest.raises(UsageError, match="other settings \\(mode 'multi' there, 'single' now\\)"):
        await run_benchmark(
            TASKS[:1], make_run_one([]), score, tmp_path, other, show_progress=False
        )


async def test_a_run_of_another_world_refuses_the_same_dir(tmp_path):
    made = INFO.model_copy(update={"extra": {"world": "c463790ae92b9581f7dc"}})
    await run_benchmark(TASKS[:1], make_run_one([]), score, tmp_path, made, show_progress=False)
    again = INFO.model_copy(update={"extra": {"world": "c463790ae92b9581f7dc", "seed": 1}})
    await run_benchmark(TASKS[:1], make_run_one([]), score, tmp_path, again, show_progress=False)
    other = INFO.model_copy(update={"extra": {"world": "a0fe57656e49caee0000"}})
    with pytest.raises(UsageError, match="world c463790ae92b9581 there, a0fe57656e49caee now"):
        await run_benchmark(
            TASKS[:1], make_run_one([]), score, tmp_path, other, show_progress=False
        )


async def test_a_run_decoded_by_another_engine_refuses_the_same_dir(tmp_path):
    def engine(backend: str) -> RunInfo:
        return INFO.model_copy(update={"extra": {"config": {"engine": {"backend": backend}}}})

    await run_benchmark(TASKS[:1], make_run_one([]), score, tmp_path, engine("torch"),
                        show_progress=False)  # fmt: skip
    with pytest.raises(UsageError, match=r"engine\.backend 'torch' there, 'llama\.cpp' now"):
        await run_benchmark(
            TASKS[:1], make_run_one([]), score, tmp_path, engine("llama.cpp"), show_progress=False
        )


def test_avg_max_pass_definitions():
    rows = [
        ResultRow(instance_id="a", trial=0, scores={"item_f1": 0.2, "success": False}),
        ResultRow(instance_id="a", trial=1, scores={"item_f1": 0.6, "success": True}),
        ResultRow(instance_id="b", trial=0, scores={"item_f1": 1.0, "success": False}),
        ResultRow(instance_id="b", trial=1, scores={"item_f1": 0.0, "success": False}),
    ]
    s = summarize(rows)
    assert s["item_f1_avg"] == pytest.approx((0.4 + 0.5) / 2)
    assert s["item_f1_max"] == pytest.approx((0.6 + 1.0) / 2)
    assert s["success_avg"] == pytest.approx((0.5 + 0.0) / 2)
    assert s["success_pass"] == pytest.approx(0.5)


async def test_report_for_a_width_sweep(tmp_path):
    for width in (1, 4):
        info = INFO.model_copy(update={"max_subagents": width})
        await run_benchmark(
            TASKS, make_run_one([]), score, tmp_path / f"w{width}", info, show_progress=False
        )
    report = write_report(tmp_path).read_text()
    assert "| w1 |" in report and "| w4 |" in report
    assert "item_f1_avg" in report and "success_pass" in report
    assert "- t0: 0.500" in report  # the worst task
    assert "By language:" in report and "| en |" in report and "| zh |" in report
    assert "- turn_limit: 2" in report and "- malformed_call: 2" in report  # t0, two trials
    assert "tokens_per_run" in report and "seconds_per_run" in report
    assert (tmp_path / "item_f1_per_task.png").stat().st_size > 0
    assert (tmp_path / "width_sweep.png").stat().st_size > 0


async def test_each_task_is_rewarded_with_its_own_kinds_headline(tmp_path):
    tasks = [Task(id="w", question="table?"), Task(id="d", question="who?", kind="qa")]

    async def both(task, traj):  # a scorer that gives every key: the headline picks one
        return {"item_f1": 0.25, "em": 1.0, "f1": 0.5}

    info = RunInfo(suite="mixed", mode="multi", profile="wideseek", model="m", trials=1)
    await run_benchmark(tasks, make_run_one([]), both, tmp_path, info, show_progress=False)
    lines = (tmp_path / TRAJECTORIES).read_text().splitlines()
    rewards = {t["task"]["id"]: t["reward"] for t in map(json.loads, lines)}
    assert rewards == {"w": 0.25, "d": 1.0}
    assert headline_metric("qa", "f1") == "f1"
    with pytest.raises(ValueError, match="qa_metric"):
        headline_metric("qa", "item_f1")


async def test_a_run_under_other_agent_limits_refuses_the_same_dir(tmp_path):
    def under(**agent) -> RunInfo:
        return INFO.model_copy(update={"extra": {"config": {"agent": agent}}})

    made = under(lead_turns=4, lead_response_tokens=768, seed=0)
    await run_benchmark(TASKS[:1], make_run_one([]), score, tmp_path, made, show_progress=False)
    # another seed is another trial's stream, not another limit: resumed
    again = under(lead_turns=4, lead_response_tokens=768, seed=1)
    await run_benchmark(TASKS[:1], make_run_one([]), score, tmp_path, again, show_progress=False)
    other = under(lead_turns=4, lead_response_tokens=256, seed=0)
    with pytest.raises(UsageError, match="lead_response_tokens 768 there, 256 now"):
        await run_benchmark(
            TASKS[:1], make_run_one([]), score, tmp_path, other, show_progress=False
        )
