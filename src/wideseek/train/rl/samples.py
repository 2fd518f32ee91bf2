"""An agent's turns as one training sequence, from the token ids the engine returned.

Contract: `agent_sample(agent, turns)` joins an `AgentRun`'s turns exactly as its context grew —
turn 0's prompt, its response, the tokens added before turn 1 (the tool results), turn 1's
response, ... — into `input_ids`, with `response_mask` true on the generated tokens of the
trained turns only (`turns`: their indices; None: every turn) and `old_logprobs` holding each
generated token's sampling logprob (0 elsewhere). A turn is trainable when the engine recorded
its response ids and their logprobs; the sequence ends before the first turn that is not (an
engine error's turn has no response, and a later context cannot be rebuilt without it). It is
None when no trained token is left, as for a chat-path server that returns no ids: such a
rollout cannot be trained on without a re-rendering, which this module refuses to do. All lists
have one entry per token; position t of `old_logprobs` scores `input_ids[t]`.
"""

from __future__ import annotations

from collections.abc import Collection
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
        """Generated tokens trained on (N_ia of the loss weights)."""
        return sum(self.response_mask)


def agent_sample(agent: AgentRun, turns: Collection[int] | None = None) -> AgentSample | None:
    ids: list[int] = []
    mask: list[bool] = []
    logprobs: list[float] = []
    for turn in agent.turns:
        added, response = turn.added_prompt_token_ids, turn.response_token_ids
        scored = turn.response_logprobs
        if added is None or response is None or scored is None or len(scored) != len(response):
            break
        trained = turns is None or turn.index in turns
        ids += added + response
        mask += [False] * len(added) + [trained] * len(response)
        logprobs += [0.0] * len(added) + (list(scored) if trained else [0.0] * len(response))
    if not any(mask):
        return None
    end = len(mask) - mask[::-1].index(True)  # what follows the last trained token adds nothing
    return AgentSample(ids[:end], mask[:end], logprobs[:end], agent.agent_id, agent.role)
