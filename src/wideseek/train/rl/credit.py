"""Which turns of a rollout are trained with its advantage (credit assignment).

Contract: `trained_turns(task, trajectory, credit)` returns {agent_id: turn indices} for the
turns to train; every one of them gets the rollout's one advantage (a failed rollout's is
usually negative). An agent *failed* when it ended on a hard failure (turn limit, context
overflow, engine error, stuck: `not AgentRun.ok`). The choices:

- "published" (the default; ../shared/wideseek_r1/RLINF.md 3.3):
  - the answer parsed and the lead finished: every turn of every agent that did not fail
    (a failed subagent's turns are left out: its failure reached the lead as a result);
  - the answer parsed but the lead failed: the lead's turns only;
  - the answer did not parse: the lead's last turn when the lead finished on its own; and the
    degenerate turns when some agent looped (the repeated-call turns of a stuck agent, our
    analogue of RLinf's turn-repeat flag), else every turn of every failed agent.
  So a failing lead gets the gradient of its failure, and healthy subagents of a failed
  rollout are not blamed for it.
- "all": every turn of every agent, failed or not.
- "healthy": every turn of the agents that did not fail (failed agents are dropped).
Whether a turn can be trained at all (recorded ids and logprobs) is `samples.agent_sample`'s
business; this module only chooses.
"""

from __future__ import annotations

from typing import Literal

from wideseek.train.rl.rewards import answer_parsed, lead_finished
from wideseek.types import AgentRun, Failure, Task, Trajectory

Credit = Literal["published", "all", "healthy"]


def _all_turns(agent: AgentRun) -> set[int]:
    return {turn.index for turn in agent.turns}


def _published(task: Task, trajectory: Trajectory) -> dict[int, set[int]]:
    lead = trajectory.lead
    finished = bool(lead_finished(task, trajectory))
    if answer_parsed(task, trajectory):
        if finished:
            return {a.agent_id: _all_turns(a) for a in trajectory.agents if a.ok}
        return {lead.agent_id: _all_turns(lead)} if lead is not None else {}
    chosen: dict[int, set[int]] = {}
    if finished and lead is not None and lead.turns:
        chosen[lead.agent_id] = {lead.turns[-1].index}
    stuck = [a for a in trajectory.agents if Failure.STUCK in a.failures]
    for agent in stuck or [a for a in trajectory.agents if not a.ok]:
        turns = (
            {t.index for t in agent.turns if Failure.REPEATED_CALL in t.failures}
            if stuck
            else _all_turns(agent)
        )
        chosen.setdefault(agent.agent_id, set()).update(turns)
    return chosen


def trained_turns(task: Task, trajectory: Trajectory, credit: Credit) -> dict[int, set[int]]:
    """{agent_id: indices of the turns trained with the rollout's advantage}; see the module
    docstring."""
    if credit == "published":
        return _published(task, trajectory)
    agents = trajectory.agents if credit == "all" else [a for a in trajectory.agents if a.ok]
    return {a.agent_id: _all_turns(a) for a in agents}
