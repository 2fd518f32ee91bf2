"""The Engine protocol: everything an agent says goes through `await engine.generate(request)`.

A request carries either rendered prompt token ids (the token path, which training needs:
exact ids and per-token logprobs come back) or chat messages plus tool schemas (the chat path,
for servers that hide tokens). An engine that can render prompts itself exposes a `renderer`;
agents use the token path whenever one is present.

This module knows nothing about agents, tools or HTTP.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from wideseek.errors import WideseekError
from wideseek.types import Message, ToolCall, Usage

FinishReason = Literal["stop", "length", "tool_calls", "error"]


class SamplingParams(BaseModel):
    temperature: float = 1.0
    top_p: float = 1.0
    # Keep only the k likeliest tokens; 0: no cut; None: the engine's default, which for a
    # vLLM or SGLang server may be the top_k of the model's generation_config.json (RL sets 0
    # so that rollouts sample the untruncated distribution its update scores). The local
    # engine cuts by top-k first, then by top-p over what is left.
    top_k: int | None = Field(None, ge=0)
    max_tokens: int | None = None  # None: up to the engine's context length
    stop: list[str] = Field(default_factory=list)
    stop_token_ids: list[int] = Field(default_factory=list)  # token path; servers that support it
    seed: int | None = None


class GenerateRequest(BaseModel):
    """Exactly one of `prompt_token_ids` (token path) or `messages` (chat path) is set."""

    prompt_token_ids: list[int] | None = None
    messages: list[Message] | None = None
    tools: list[dict[str, Any]] | None = None  # OpenAI function-tool schemas, chat path only
    sampling: SamplingParams = Field(default_factory=SamplingParams)
    # Free-form routing hints (role, agent id); engines may ignore them. Scripted and oracle
    # engines use them to know which agent is speaking.
    metadata: dict[str, Any] = Field(default_factory=dict)


class Completion(BaseModel):
    text: str
    token_ids: list[int] | None = None
    logprobs: list[float] | None = None  # logprob of each sampled token, aligned with token_ids
    finish_reason: FinishReason = "stop"
    usage: Usage = Field(default_factory=Usage)
    # Native tool calls from a chat server that parsed them itself (vLLM --tool-call-parser).
    tool_calls: list[ToolCall] | None = None


class EngineError(WideseekError, RuntimeError):
    """The engine could not produce a completion (server unreachable, retries exhausted...)."""


class ContextLengthError(EngineError):
    """The server refused the request because the prompt does not fit the model's context."""


@runtime_checkable
class ChatRenderer(Protocol):
    """Turns chat messages into token ids with a model's chat template (token path)."""

    context_length: int

    def render_prompt(
        self, messages: list[Message], tools: list[dict[str, Any]] | None
    ) -> list[int]: ...

    def render_tool_turn(self, response_ids: list[int], tool_texts: list[str]) -> list[int]:
        """Ids to append after a response: the end of the assistant turn when the engine left
        it off, one tool message per text, and the next generation prompt, so that the running
        context stays an exact prefix of what the model saw."""
        ...

    def decode(self, ids: list[int]) -> str: ...


@runtime_checkable
class Engine(Protocol):
    model_name: str
    renderer: ChatRenderer | None

    async def generate(self, request: GenerateRequest) -> Completion: ...
