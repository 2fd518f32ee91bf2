"""RL task selection: id filters, the start model's pass-rate window (measured once, reused on
resume) and flat groups replaced by other tasks' groups, on the tiny random model with scripted
outcomes."""

from __future__ import annotations

import json
import shutil

import pytest

from test_rl_trainer import AGENT, config
from tiny_lm import make_tiny_lm
from wideseek.errors import WideseekError
from wideseek.train.dev_eval import DevEvalSettings
from wideseek.train.rl.rewards import CompositeReward, Term
from wideseek.train.rl.task_selection import (
    PassRates,
    PassRateWindow,
    TaskSelection,
    replacement_tasks,
    select_pool,
)
from wideseek.train.rl.trainer import RLTrainer, step_tasks
from wideseek.types import Task


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_lm(tmp_path_factory.mktemp("lm"), max_positions=4096)


def tasks(*ids: str) -> list[Task]:
    return [Task(id=i, question="q") for i in ids]


SUITES = {"wide": tasks("w1", "w2", "w3"), "deep": tasks("d1", "d2", "d3")}


def test_the_pool_keeps_the_listed_ids_then_the_first_of_each_suite(tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("# hard ones\nd3\n\nw3  # wide\nw1\n")
    pool = select_pool(SUITES, TaskSelection(ids=["d1"], ids_file=str(ids)))
    assert [t.id for t in pool] == ["w1", "w3", "d1", "d3"]  # suite order, not list order
    pool = select_pool(SUITES, TaskSelection(ids_file=str(ids), first=1))
    assert [t.id for t in pool] == ["w1"]
    assert [t.id for t in select_pool(SUITES, TaskSelection(first=2))] == ["w1", "w2", "d1", "d2"]
    assert len(select_pool(SUITES, TaskSelection())) == 6


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        (TaskSelection(ids=["d1", "x9"]), "select: unknown task ids: x9"),
        (TaskSelection(ids=["d3"], first=2), "select: no task left"),
        (TaskSelection(ids_file="/nonexistent/ids.txt"), "select.ids_file /nonexistent/ids.txt"),
        (TaskSelection(ids=[]), "select: the id lists name no task"),
    ],
)
def test_a_selection_that_cannot_work_is_one_line(selection, message):
    with pytest.raises(WideseekError, match="^" + message.replace(".", r"\.")) as e:
        select_pool(SUITES, selection)
    assert "\n" not in str(e.value)


def test_the_window_is_checked_when_the_file_loads():
    with pytest.raises(ValueError, match=r"min 0\.9 > max 0\.1"):
        PassRateWindow(min=0.9, max=0.1)


def test_pass_rates_count_outcomes_at_or_above_solved_at():
    rates = PassRates(settings="s", samples=4, outcomes={
        "w1": [1.0, 1.0, 1.0, 1.0], "w2": [0.5, 0.0, 0.0, 0.0], "w3": [0.6, 0.4, 0.0, 0.0],
        "d1": [0.0, 0.0, 0.0, 0.0],
    })  # fmt: skip
    assert rates.rate("w3", 0.5) == 0.25 and rates.rate("w3", 0.4) == 0.5
    window = PassRateWindow(min=0.1, max=0.9, solved_at=0.5)
    kept = rates.in_window(SUITES["wide"] + SUITES["deep"][:1], window)
    assert [t.id for t in kept] == ["w2", "w3"]  # never (d1) and always (w1) solved: out
    assert rates.missing(SUITES["deep"]) == ["d2", "d3"]


def test_a_spread_keeps_varied_outcomes_that_never_reach_solved_at():
    rates = PassRates(settings="s", samples=4, outcomes={
        "w1": [1.0, 1.0, 1.0, 1.0], "w2": [0.4, 0.0, 0.1, 0.0], "w3": [0.2, 0.2, 0.2, 0.2],
        "d1": [1.0, 0.0, 0.0, 0.0],
    })  # fmt: skip
    pool = SUITES["wide"] + SUITES["deep"][:1]
    by_rate = PassRateWindow(min=0.1, max=0.9, solved_at=0.5)
    assert [t.id for t in rates.in_window(pool, by_rate)] == ["d1"]
    also_spread = by_rate.model_copy(update={"min_spread": 0.3})
    assert [t.id for t in rates.in_window(pool, also_spread)] == ["w2", "d1"]  # w1, w3: flat
    assert rates.spread("w2") == 0.4


def test_balanced_steps_draw_each_suite_in_turn_from_its_own_cycle():
    pool = [*SUITES["wide"], *(Task(id=f"d{i}", question="q") for i in range(1, 9))]
    suite_of = {t.id: "wide" if t.id.startswith("w") else "deep" for t in pool}
    steps = [step_tasks(pool, step, 4, seed=5, suite_of=suite_of) for step in range(6)]
    assert all([suite_of[t.id] for t in tasks] == ["wide"] * 2 + ["deep"] * 2 for tasks in steps)
    wide = [t.id for tasks in steps[:3] for t in tasks[:2]]
    assert sorted(wide) == ["w1", "w1", "w2", "w2", "w3", "w3"]  # 3 tasks: each twice in 3 steps
    deep = [t.id for tasks in steps[:4] for t in tasks[2:]]
    assert sorted(deep) == [f"d{i}" for i in range(1, 9)]  # each once per pass over the suite
    again = [step_tasks(pool, step, 4, seed=5, suite_of=suite_of) for step in range(6)]
    assert again == steps  # a resumed run draws the same
    # an odd count: the suites take the slots in turn, the first suite one more
    assert [suite_of[t.id] for t in step_tasks(pool, 0, 3, 5, suite_of)] == ["wide"] * 2 + ["deep"]


def test_the_trainer_draws_balanced_steps_when_asked(model_dir, tmp_path):
    select = TaskSelection(first=3, balance_suites=True)
    cfg = config(model_dir, tmp_path, suites=["wide", "deep"], tasks_per_step=2, select=select)
    trainer = RLTrainer(cfg, show_progress=False)
    for step in range(3):
        drawn = [trainer.suite_of[t.id] for t in trainer.step_tasks(step)]
        assert drawn == ["wide", "deep"]  # tasks_per_step 2: one of each


def test_replacements_are_other_tasks_in_a_seeded_order_per_step():
    pool = SUITES["wide"] + SUITES["deep"]
    first = replacement_tasks(pool, {"w1", "d1"}, step=3, seed=0)
    assert sorted(t.id for t in first) == ["d2", "d3", "w2", "w3"]
    assert first == replacement_tasks(pool, {"w1", "d1"}, step=3, seed=0)  # a resumed step
    orders = {tuple(t.id for t in replacement_tasks(pool, set(), s, 0)) for s in range(6)}
    assert len(orders) > 1  # each step draws its own order


def test_a_bad_id_list_stops_the_trainer_before_the_model_loads(model_dir, tmp_path, monkeypatch):
    from wideseek.train.rl import trainer

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(trainer, "load_trainable", no_model)
    cfg = config(model_dir, tmp_path, select=TaskSelection(ids_file=str(tmp_path / "none.txt")))
    with pytest.raises(WideseekError, match=r"^select\.ids_file .*none\.txt: No such file"):
        RLTrainer(cfg, show_progress=False)


def test_a_default_selection_keeps_the_ids_of_runs_from_before_it():
    from wideseek.train.rl.config import RLConfig, policy_after

    plain = RLConfig(model="m", out_dir="o")
    assert policy_after("p", plain) == "427247c464b0c186"  # computed before select existed
    narrowed = plain.model_copy(update={"select": TaskSelection(first=3)})
    assert policy_after("p", narrowed) != policy_after("p", plain)


def scripted(outcomes: dict[str, str]) -> CompositeReward:
    """Outcome per task id: "all" (every rollout 1), "half" (trial 0 only), else 0."""

    def outcome(task, trajectory) -> float:
        kind = outcomes.get(task.id)
        return float(kind == "all" or (kind == "half" and trajectory.trial == 0))

    return CompositeReward(outcome=Term("outcome", outcome))


def rows_of(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def trained_ids(out, step: int, resample: int = 0) -> set[str]:
    """The tasks step `step` rolled out (its `resample`-th round of replacements: r > 0)."""
    run = out / "rollouts" / f"step-{step}"
    run = run / f"resample-{resample}" if resample else run
    lines = (run / "trajectories.jsonl").read_text().splitlines()
    return {json.loads(line)["task"]["id"] for line in lines}


def test_the_pass_rate_window_is_measured_once_and_reused_on_resume(model_dir, tmp_path, capsys):
    window = PassRateWindow(min=0.1, max=0.9, samples=2)
    cfg = config(model_dir, tmp_path, steps=1, select=TaskSelection(first=4, pass_rate=window))
    probe = RLTrainer(cfg, show_progress=False)
    a, b, c, d = (t.id for t in probe.pool)
    solvable = {a: "all", b: "half", c: "half"}  # d: never
    RLTrainer(cfg, show_progress=False, reward=scripted(solvable)).train()
    rates = json.loads((tmp_path / "pass-rates.json").read_text())
    assert rates["samples"] == 2 and sorted(rates["outcomes"]) == sorted([a, b, c, d])
    assert rates["outcomes"][b] in ([1.0, 0.0], [0.0, 1.0]) and rates["outcomes"][a] == [1, 1]
    assert trained_ids(tmp_path, 1) <= {b, c}  # a (always) and d (never) left out
    assert "2 of 4 tasks (deep 2) solved within [0.1, 0.9]" in capsys.readouterr().err
    measured = (tmp_path / "pass-rate" / "trajectories.jsonl").read_text()
    assert len(measured.splitlines()) == 8
    # resumed after step 1: the start model's rates are read back, not measured again by the
    # trained weights (which here solve nothing: a new measurement would keep no task)
    resumed = RLTrainer(cfg.model_copy(update={"steps": 2}), show_progress=False,
                        reward=scripted({}))  # fmt: skip
    resumed.train()
    assert [t.id for t in resumed.pool] == [b, c] and trained_ids(tmp_path, 2) <= {b, c}
    assert (tmp_path / "pass-rate" / "trajectories.jsonl").read_text() == measured
    assert "measuring" not in capsys.readouterr().err
    # without the measurement a resumed run cannot take one: one line, no guess
    (tmp_path / "pass-rates.json").unlink()
    again = RLTrainer(cfg.model_copy(update={"steps": 3}), show_progress=False)
    with pytest.raises(WideseekError, match="at step 2 and cannot measure them again"):
        again.train()


def test_a_run_can_take_another_runs_measurement_so_every_arm_trains_on_one_slice(
    model_dir, tmp_path, capsys
):
    window = PassRateWindow(min=0.1, max=0.9, samples=2)
    # the preparation: 0 steps, so the measurement and the start model's dev figures only
    dev = DevEvalSettings(wide_tasks=0, deep_tasks=1, agent={**AGENT, "temperature": 0.0})
    select = TaskSelection(first=4, pass_rate=window)
    first = config(model_dir, tmp_path / "s1", steps=0, select=select, eval_every=1, eval=dev)
    a, b = (t.id for t in RLTrainer(first, show_progress=False).pool[:2])
    prepared = RLTrainer(first, show_progress=False, reward=scripted({a: "all", b: "half"}))
    assert prepared.train() == tmp_path / "s1"
    assert [row["step"] for row in rows_of(tmp_path / "s1")] == [0]  # the dev figures
    assert rows_of(tmp_path / "s1")[0]["dev_deep_em"] is not None
    assert not (tmp_path / "s1" / "final").exists() and not (tmp_path / "s1" / "rollouts").exists()
    measured = json.loads((tmp_path / "s1" / "pass-rates.json").read_text())
    assert measured["model"] == str(model_dir)
    capsys.readouterr()
    # another seed and the single agent: no measurement of its own, the first run's slice
    borrowing = window.model_copy(update={"measured_in": str(tmp_path / "s1")})
    select = TaskSelection(first=4, pass_rate=borrowing)
    other = first.model_copy(update={"out_dir": str(tmp_path / "s2"), "seed": 7, "steps": 1,
                                     "eval_every": 0, "mode": "single",
                                     "select": select})  # fmt: skip
    trainer = RLTrainer(other, show_progress=False, reward=scripted({}))  # solves nothing
    trainer.train()
    assert [t.id for t in trainer.pool] == [b] and trained_ids(tmp_path / "s2", 1) == {b}
    assert not (tmp_path / "s2" / "pass-rate").exists()
    assert json.loads((tmp_path / "s2" / "pass-rates.json").read_text()) == measured
    assert "as " + str(tmp_path / "s1" / "pass-rates.json") in capsys.readouterr().err
    # the same weights by another path (a measurement kept in the repo, read from another
    # checkout) are the same start model
    copy = shutil.copytree(model_dir, tmp_path / "copy")
    moved = other.model_copy(update={"out_dir": str(tmp_path / "s4"), "model": str(copy)})
    trainer = RLTrainer(moved, show_progress=False, reward=scripted({}))
    trainer.train()
    assert [t.id for t in trainer.pool] == [b]
    # other weights at the measured path (a re-shipped model), or no measurement: one line each
    weights = next(copy.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    nowhere = window.model_copy(update={"measured_in": str(tmp_path / "none")})
    # a measurement on other pages (another world, or one that did not record its world)
    assert measured["world"] == trainer.world.manifest.world_hash
    for name, world in [("s5", "0" * 64), ("s6", None)]:
        (tmp_path / name).mkdir()
        other_world = json.dumps({**measured, "world": world})
        (tmp_path / name / "pass-rates.json").write_text(other_world, encoding="utf-8")
    elsewhere = [window.model_copy(update={"measured_in": str(tmp_path / n)}) for n in ("s5", "s6")]
    for update, message in [
        ({"model": str(copy)}, "measured on other weights"),
        ({"select": TaskSelection(first=4, pass_rate=nowhere)}, "no pass-rates.json there"),
        ({"select": TaskSelection(first=4, pass_rate=elsewhere[0])}, "on world 0000000000000000"),
        ({"select": TaskSelection(first=4, pass_rate=elsewhere[1])}, "on world not recorded"),
    ]:
        bad = other.model_copy(update={"out_dir": str(tmp_path / "s3"), **update})
        with pytest.raises(WideseekError, match=message):
            RLTrainer(bad, show_progress=False).train()


def test_flat_groups_are_replaced_by_other_tasks_groups_and_counted(model_dir, tmp_path):
    def run(out, tries: int) -> tuple[dict, list]:
        cfg = config(model_dir, out, steps=1, tasks_per_step=2,
                     select=TaskSelection(first=4, resample_flat=tries))  # fmt: skip
        outcomes: dict[str, str] = {}
        trainer = RLTrainer(cfg, show_progress=False, reward=scripted(outcomes))
        x, y = step_tasks(trainer.pool, 0, 2, cfg.seed)
        c1, c2 = replacement_tasks(trainer.pool, {x.id, y.id}, 0, cfg.seed)
        outcomes.update({x.id: "half", c2.id: "half"})  # y and c1 flat
        calls = []
        update = trainer.update
        trainer.update = lambda pairs, rollouts=None: (
            calls.append((len(pairs), rollouts)) or update(pairs, rollouts)
        )
        trainer.train()
        return rows_of(out)[0], calls, [c1.id, c2.id]

    # two tries, one a round: c1 is flat too, c2 replaces y; B counts the step's two groups
    row, calls, (c1, c2) = run(tmp_path / "two", tries=2)
    assert (row["resampled_groups"], row["replaced_groups"], row["flat_groups"]) == (2, 1, 0.0)
    assert calls == [(4, 4)] and row["rollouts"] == 4 and row["rollouts_kept"] == 4
    assert trained_ids(tmp_path / "two", 1, resample=1) == {c1}
    assert trained_ids(tmp_path / "two", 1, resample=2) == {c2}
    # one try: c1, flat as well, replaces nothing
    row, calls, _ = run(tmp_path / "one", tries=1)
    assert (row["resampled_groups"], row["replaced_groups"], row["flat_groups"]) == (1, 0, 0.5)
    assert calls == [(2, 4)]


def test_a_balanced_step_replaces_a_flat_group_with_a_task_of_its_suite(model_dir, tmp_path):
    select = TaskSelection(first=3, balance_suites=True, resample_flat=2)
    outcomes: dict[str, str] = {}
    for seed in range(20):  # a seed whose first replacement candidate is of the other suite
        cfg = config(model_dir, tmp_path, steps=1, suites=["wide", "deep"], tasks_per_step=2,
                     select=select, seed=seed)  # fmt: skip
        trainer = RLTrainer(cfg, show_progress=False, reward=scripted(outcomes))
        wide, deep = trainer.step_tasks(0)
        others = replacement_tasks(trainer.pool, {wide.id, deep.id}, 0, seed)
        if trainer.suite_of[others[0].id] == "deep":
            break
    assert trainer.suite_of[others[0].id] == "deep"
    outcomes.update({t.id: "half" for t in [deep, *others]})  # only the wide group is flat
    trainer.train()
    first_wide = next(t for t in others if trainer.suite_of[t.id] == "wide")
    assert trained_ids(tmp_path, 1, resample=1) == {first_wide.id}  # not others[0], a deep one
    row = rows_of(tmp_path)[0]
    assert (row["resampled_groups"], row["replaced_groups"]) == (1, 1)
