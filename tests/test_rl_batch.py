"""RL without a model: the reward (format = the scorer read the answer), credit assignment
(which turns train) and the token weights of hand-made groups (B = every rollout of the step)."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from wideseek.eval.table_extract import render_markdown_table
from wideseek.eval.task_scoring import TaskScorer
from wideseek.train.rl.batch import build_batch
from wideseek.train.rl.credit import trained_turns
from wideseek.train.rl.rewards import (
    CompositeReward,
    RewardShaping,
    Term,
    accessed,
    build_reward,
    outcome,
)
from wideseek.types import AgentRun, Failure, Task, ToolCall, Trajectory, Turn, Usage
from wideseek.world import load_world
from wideseek.world.suites import deep_tasks, wide_tasks


def scored(task: Task, answer: str, lead_ok: bool = True, access: bool = False) -> Trajectory:
    """A one-lead rollout answering `answer`, scored by the project's own scorer."""
    calls = [ToolCall(id="c", name="access")] if access else []
    turn = Turn(index=0, n_context_messages=2, usage=Usage(completion_tokens=10), tool_calls=calls)
    lead = AgentRun(agent_id=0, role="lead", prompt="q", turns=[turn],
                    failures=[] if lead_ok else [Failure.TURN_LIMIT])  # fmt: skip
    traj = Trajectory(task=task, mode="multi", agents=[lead], final_answer=answer)
    traj.scores = asyncio.run(TaskScorer()(task, traj))
    return traj


@pytest.fixture(scope="module")
def tasks() -> tuple[Task, Task]:
    world = load_world()
    return next(iter(wide_tasks(world, "dev"))), next(iter(deep_tasks(world, "dev")))


def test_the_format_bonus_pays_only_for_an_answer_the_scorer_reads(tasks):
    wide, deep = tasks
    reward = build_reward(RewardShaping())
    gold = pd.read_csv(wide.metadata["gold"])
    perfect = render_markdown_table(gold)
    wrong = render_markdown_table(gold.assign(**{gold.columns[1]: -1.0}))
    other_columns = render_markdown_table(gold.rename(columns={gold.columns[1]: "height"}))
    cases = {
        perfect: 1.1,  # item F1 1 + the format bonus
        wrong: 0.6,  # keys right, values wrong: item F1 0.5, and it parsed: the bonus is paid
        "```markdown\n```": 0.0,  # an empty fence: nothing parses
        "```markdown\n| a | b |\n```": 0.0,  # not the required columns
        other_columns: 0.0,  # "columns differ"
    }
    for answer, expected in cases.items():
        r = reward.score(wide, scored(wide, answer))
        assert r.total == pytest.approx(expected), answer
        assert r.values["format_ok"] == float(expected != 0.0), answer
    assert reward(deep, scored(deep, "\\boxed{Accra}")) == pytest.approx(1.1)
    assert reward(deep, scored(deep, "\\boxed{Lagos}")) == pytest.approx(0.1)
    for unread in ("\\boxed{Accra", "\\boxed{}", "\\boxed{ }", "Accra"):  # EM of "Accra" is 1
        r = reward.score(deep, scored(deep, unread))
        assert r.total == 0.0 and r.gated and r.values["format_ok"] == 0.0, unread
    assert reward(deep, scored(deep, "\\boxed{Accra}", lead_ok=False)) == 0.0


def test_bonuses_can_be_zeroed_or_gated_on_the_outcome(tasks):
    _, deep = tasks
    wrong, right = scored(deep, "\\boxed{Lagos}", access=True), scored(deep, "\\boxed{Accra}")
    assert build_reward(RewardShaping())(deep, wrong) == pytest.approx(0.15)
    gated = build_reward(RewardShaping(shaping_needs_outcome=True))
    assert gated(deep, wrong) == 0.0 and gated(deep, right) == pytest.approx(1.1)
    plain = build_reward(RewardShaping(format_bonus=0, access_bonus=0, length_penalty=0))
    assert plain(deep, wrong) == 0.0 and plain(deep, right) == 1.0


def test_rewards_compose_weighted_callables(tasks):
    _, deep = tasks
    reward = CompositeReward(
        outcome=Term("outcome", outcome("f1"), 2.0),
        shaping=(Term("accessed", accessed, 0.5), Term("one", lambda task, traj: 1.0, -0.25)),
    )
    traj = scored(deep, "\\boxed{Accra}", access=True)
    assert reward.score(deep, traj).values == {"outcome": 1.0, "accessed": 1.0, "one": 1.0}
    assert reward(deep, traj) == 2.0 + 0.5 - 0.25
    assert reward.names() == ["outcome", "accessed", "one"]


# -- credit assignment and weights over hand-made rollouts ----------------------------------------


def agent(agent_id: int, tokens: list[int], failures=(), repeated=()) -> AgentRun:
    """An agent whose turn i generated tokens[i] tokens (ids and logprobs recorded)."""
    turns = [
        Turn(index=i, n_context_messages=2 * i + 2, added_prompt_token_ids=[1, 2],
             response_token_ids=[7] * n, response_logprobs=[-0.5] * n,
             failures=[Failure.REPEATED_CALL] if i in repeated else [])
        for i, n in enumerate(tokens)
    ]  # fmt: skip
    role = "lead" if agent_id == 0 else "subagent"
    return AgentRun(agent_id=agent_id, role=role, prompt="p", turns=turns, failures=list(failures))


def rollout(task_id: str, em: float, parsed: bool, agents: list[AgentRun]) -> Trajectory:
    task = Task(id=task_id, question="q", kind="qa")
    return Trajectory(task=task, mode="multi", agents=agents, scores={"em": em, "parsed": parsed})


def test_published_credit_trains_a_failed_rollout_s_failures_not_its_healthy_agents():
    lead, sub, failed = agent(0, [5, 5]), agent(1, [3]), agent(2, [4, 4], [Failure.TURN_LIMIT])
    lead_failed = agent(0, [5, 5], [Failure.TURN_LIMIT])
    stuck = agent(3, [2, 2, 2], [Failure.STUCK], repeated=(1, 2))

    def chosen(traj: Trajectory, credit: str = "published") -> dict[int, set[int]]:
        return trained_turns(traj.task, traj, credit)

    # answer read, lead finished: every healthy agent, the failed subagent left out
    assert chosen(rollout("t", 1, True, [lead, sub, failed])) == {0: {0, 1}, 1: {0}}
    # answer read, lead failed: the lead's turns only
    assert chosen(rollout("t", 0, True, [lead_failed, sub])) == {0: {0, 1}}
    # answer not read: the finished lead's last turn and every failed agent's turns
    assert chosen(rollout("t", 0, False, [lead, sub, failed])) == {0: {1}, 2: {0, 1}}
    assert chosen(rollout("t", 0, False, [lead_failed, sub])) == {0: {0, 1}}
    # ... and when an agent looped, its repeated turns instead of the failed agents'
    assert chosen(rollout("t", 0, False, [lead, failed, stuck])) == {0: {1}, 3: {1, 2}}
    traj = rollout("t", 0, False, [lead_failed, sub, failed])
    assert chosen(traj, "all") == {0: {0, 1}, 1: {0}, 2: {0, 1}}
    assert chosen(traj, "healthy") == {1: {0}}


def test_b_counts_every_rollout_of_the_step_flat_groups_included():
    em = CompositeReward(outcome=Term("outcome", outcome("em")))
    # group a is flat; in group b, rollout b0 (reward 1: a lead of 10 tokens and a subagent of
    # 30) and b1 (reward 0: a lead of 20 tokens) carry the signal
    steps = [
        rollout("a", 0, True, [agent(0, [8])]),
        rollout("a", 0, True, [agent(0, [9])]),
        rollout("b", 1, True, [agent(0, [4, 6]), agent(1, [30])]),
        rollout("b", 0, True, [agent(0, [20])]),
    ]
    batch = build_batch(steps, em, "all", lambda task: "deep")
    assert (batch.groups, batch.flat_groups, len(batch.kept)) == (2, 1, 2)
    b0, b1 = batch.kept
    assert b0.advantage == pytest.approx(0.7071, abs=1e-3) and b1.advantage == -b0.advantage
    assert [s.n_generated for s in b0.samples] == [10, 30]
    # published: B = 4 rollouts of the step
    assert batch.weights("step") == [
        [pytest.approx(1 / (4 * 2 * 10)), pytest.approx(1 / (4 * 2 * 30))],
        [pytest.approx(1 / (4 * 1 * 20))],
    ]
    # the kept-only option: B = 2, each kept rollout weighs twice as much
    assert batch.weights("kept") == [
        [pytest.approx(1 / (2 * 2 * 10)), pytest.approx(1 / (2 * 2 * 30))],
        [pytest.approx(1 / (2 * 1 * 20))],
    ]


def test_a_failed_agent_trains_with_the_rollout_s_advantage_unless_dropped():
    em = CompositeReward(outcome=Term("outcome", outcome("em")))
    # the second rollout's lead hit the turn limit: published, only its turns train, with the
    # group's negative advantage; "healthy" drops it, leaving its subagent to take the blame
    group = [
        rollout("a", 1, True, [agent(0, [5]), agent(1, [5])]),
        rollout("a", 0, False, [agent(0, [5, 5], [Failure.TURN_LIMIT]), agent(1, [7])]),
    ]
    published = build_batch(group, em, "published", lambda task: "deep").kept[1]
    assert published.advantage < 0
    assert [(s.agent_id, s.n_generated) for s in published.samples] == [(0, 10)]
    healthy = build_batch(group, em, "healthy", lambda task: "deep").kept[1]
    assert [(s.agent_id, s.n_generated) for s in healthy.samples] == [(1, 7)]
