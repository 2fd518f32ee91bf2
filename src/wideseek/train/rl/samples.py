"""An agent's turns as one training sequence, from the token ids the engine returned.

Contract: `agent_sample(agent)` joins an `AgentRun`'s turns exactly as its context grew —
turn 0's prompt, its response, the tokens added before turn 1 (the tool results), turn 1's
response, ... — into `input_ids`, with `response_mask` true on the generated tokens only and
`old_logprobs` holding each generated token's sampling logprob (0 elsewhere). It is None when
the engine recorded no ids or logprobs (a chat-path server): such a rollout cannot be trained
on without a re-rendering, which this module refuses to do. All lists have one entry per
token; position t of `old_logprobs` scores `input_ids[t]`.
"""

from __future__ import annotations

from dataclasses import dataclass

from wideseek.types import AgentRun


@dataclass
class AgentSample:
    input_ids: list[int]
    response_mask: list[bool]
    old_logprobs: list[float]
    agent_id: int
    role: str

    @property
    def n_generated(self) -> int:
        return sum(self.response_mask)


def agent_sample(agent: AgentRun) -> AgentSample | None:
    ids: list[int] = []
    mask: list[bool] = []
    logprobs: list[float] = []
    for turn in agent.turns:
        added, response = turn.added_prompt_token_ids, turn.response_token_ids
        scored = turn.response_logprobs
        if added is None or response is None or scored is None or len(scored) != len(response):
            return None
        ids += added + response
        mask += [False] * len(added) + [True] * len(response)
        logprobs += [0.0] * len(added) + list(scored)
    if not any(mask):
        return None
    return AgentSample(ids, mask, logprobs, agent.agent_id, agent.role)
