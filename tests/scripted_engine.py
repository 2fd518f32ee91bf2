"""A scripted engine: replays fixed responses (a test double).

Responses are chosen by the agent that asks (`request.metadata["role"]`, then the default
queue), so a test can script the lead and its subagents separately even though subagents run
concurrently. When a queue runs dry the engine answers with `fallback`.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import Callable, Iterable

from wideseek.llm.engine import ChatRenderer, Completion, GenerateRequest
from wideseek.types import Usage

Responder = Callable[[GenerateRequest], str]


class ScriptedEngine:
    model_name = "scripted"
    renderer: ChatRenderer | None = None

    def __init__(
        self,
        responses: Iterable[str] | dict[str, Iterable[str]] = (),
        fallback: str = "done",
        latency_s: float = 0.0,
        responder: Responder | None = None,
    ) -> None:
        self.queues: dict[str, deque[str]] = defaultdict(deque)
        if isinstance(responses, dict):
            for key, items in responses.items():
                self.queues[key].extend(items)
        else:
            self.queues["*"].extend(responses)
        self.fallback = fallback
        self.latency_s = latency_s
        self.responder = responder
        self.requests: list[GenerateRequest] = []

    async def generate(self, request: GenerateRequest) -> Completion:
        self.requests.append(request)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if self.responder is not None:
            text = self.responder(request)
        else:
            role = str(request.metadata.get("role", "*"))
            queue = self.queues.get(role) or self.queues.get("*")
            text = queue.popleft() if queue else self.fallback
        return Completion(
            text=text, finish_reason="stop", usage=Usage(completion_tokens=len(text.split()))
        )
