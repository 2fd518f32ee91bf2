"""`QueuedEngine`: the request side of the in-process engines (`LocalEngine` over transformers,
`LlamaCppEngine` over llama.cpp): a request becomes a `DecodeRow` queued for one decode loop
that runs in a worker thread, and a finished row becomes a `Completion`.

Contract for a subclass: call `__init__` with the model's tokenizer, context length, vocabulary
size and eos ids, and implement `_decode_until_idle()`: take queued jobs with `_take(n)`,
decode their rows (each sampled token recorded with `record_token`), answer every job with
`answer(job, self._completion(row))` or an `EngineError`, until none is left.

What it gives them:
- `generate`: the prompt from token ids, or chat messages + tools rendered with the model's own
  tokenizer and chat template (`renderer`), checked against the vocabulary; a prompt that leaves
  no room in the context answers finish_reason "length" with no text at once; each request
  samples from its own `torch.Generator`, seeded by `SamplingParams.seed` or by the engine's
  seeded counter, so its tokens depend on its own seed only.
- One worker per event loop (a server and a test may each run one): it waits `batch_window_s`
  so that concurrent requests arrive together, then runs the decode loop in a thread (torch and
  llama.cpp release the GIL), so the event loop stays free; each job is answered on its loop.
- Completions whose text drops control tokens (`<|im_end|>`) and ends at the first stop string
  it keeps (`</tool_call>` stays parseable); token ids include the token that ended generation,
  as vLLM's do, so a next prompt extends them exactly.
- `generation_defaults()`: what the model directory recommends (sampling, evaluated limits).

This module knows requests, rows and threads; not models, caches or kernels.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import random
import weakref
from dataclasses import dataclass
from typing import Any

import torch

from wideseek.llm.batched_decode import DecodeRow, record_token
from wideseek.llm.engine import ChatRenderer, Completion, EngineError, GenerateRequest
from wideseek.llm.renderer import HFChatRenderer
from wideseek.llm.resolved_model import ResolvedModel
from wideseek.types import Usage


class InvalidPromptError(EngineError, ValueError):
    """The request itself is unusable (no prompt, ids outside the vocabulary): HTTP 400."""


def make_renderer(tokenizer, context_length: int) -> ChatRenderer:
    """The token-path renderer over the model's own tokenizer and chat template."""
    return HFChatRenderer(tokenizer, context_length)


@dataclass(eq=False)
class Job:
    row: DecodeRow
    future: asyncio.Future[Completion]
    loop: asyncio.AbstractEventLoop  # the loop that awaits `future`


class QueuedEngine:
    """Requests queued for a subclass's decode loop (see the module docstring)."""

    model_name: str
    renderer: ChatRenderer | None

    def __init__(
        self,
        resolved: ResolvedModel,
        tokenizer: Any,
        *,
        context_length: int,
        vocab_size: int,
        eos_ids: set[int],
        model_name: str | None,
        seed: int,
        batch_window_s: float,
        device: torch.device,
    ) -> None:
        self.resolved = resolved
        self.tokenizer = tokenizer
        self.context_length = context_length
        self.vocab_size = vocab_size
        self.eos_ids = eos_ids
        self.model_name = model_name or resolved.name
        self.renderer = make_renderer(tokenizer, context_length)
        self.batch_window_s = batch_window_s
        self.device = device  # where each request's generator lives
        self._seeds = random.Random(seed)
        self._inbox: queue.SimpleQueue[Job] = queue.SimpleQueue()  # thread-safe hand-off
        self._workers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]]
        self._workers = weakref.WeakKeyDictionary()

    def generation_defaults(self) -> dict[str, float | int]:
        """The agent settings the model directory itself recommends, by AgentConfig field
        name: its generation_config.json's sampling settings (`do_sample: false` reads as
        temperature 0), the limits its `wideseek.json` records, and the context length (never
        above this engine's). Callers apply them where the user set nothing, as transformers'
        `generate` and vLLM do with generation_config.json."""
        return self.resolved.recommended(self.context_length)

    # --- the Engine protocol -------------------------------------------------------------
    async def generate(self, request: GenerateRequest) -> Completion:
        prompt = self._prompt_ids(request)
        room = self.context_length - len(prompt)
        params = request.sampling
        max_new = room if params.max_tokens is None else min(params.max_tokens, room)
        if max_new <= 0:
            usage = Usage(prompt_tokens=len(prompt))
            return Completion(
                text="", token_ids=[], logprobs=[], finish_reason="length", usage=usage
            )
        seed = params.seed if params.seed is not None else self._seeds.getrandbits(63)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        row = DecodeRow(prompt=prompt, params=params, max_new=max_new, generator=generator)
        loop = asyncio.get_running_loop()
        job = Job(row, loop.create_future(), loop)
        self._inbox.put(job)
        worker = self._workers.get(loop)
        if worker is None or worker.done():
            self._workers[loop] = loop.create_task(self._work())
        return await job.future

    def _prompt_ids(self, request: GenerateRequest) -> list[int]:
        if request.prompt_token_ids is not None:
            prompt = list(request.prompt_token_ids)
        elif request.messages is not None and self.renderer is not None:
            prompt = self.renderer.render_prompt(request.messages, request.tools)
        else:
            raise InvalidPromptError("request has neither prompt_token_ids nor messages")
        if not prompt:
            raise InvalidPromptError("empty prompt")
        if min(prompt) < 0 or max(prompt) >= self.vocab_size:
            raise InvalidPromptError(f"prompt token ids must lie in [0, {self.vocab_size})")
        return prompt

    # --- scheduling ------------------------------------------------------------------------
    async def _work(self) -> None:
        while not self._inbox.empty():
            await asyncio.sleep(self.batch_window_s)  # let concurrent requests arrive together
            await asyncio.to_thread(self._decode_until_idle)

    def _decode_until_idle(self) -> None:
        """Decode queued requests, admitting newcomers between steps, until none is left."""
        raise NotImplementedError

    def _take(self, limit: int) -> list[Job]:
        taken: list[Job] = []
        while len(taken) < limit:
            try:
                taken.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        return taken

    # --- rows to completions -------------------------------------------------------------
    def _record(self, row: DecodeRow, token: int, logp: float) -> None:
        record_token(row, token, logp, self.eos_ids, self._stopped)

    def _completion(self, row: DecodeRow) -> Completion:
        text = self.tokenizer.decode(row.ids, skip_special_tokens=True)
        hit = first_stop(text, row.params.stop)
        if hit is not None:
            text = text[:hit]
        return Completion(
            text=text,
            token_ids=row.ids,
            logprobs=row.logprobs,
            finish_reason=row.finish or "length",
            usage=Usage(prompt_tokens=len(row.prompt), completion_tokens=len(row.ids)),
        )

    def _stopped(self, row: DecodeRow) -> bool:
        """Whether the row's newest token completed one of its stop strings."""
        if not row.params.stop:
            return False
        # A stop string of n characters spans at most n tokens (plus one split UTF-8 char).
        window = max(len(s) for s in row.params.stop) + 1
        tail = self.tokenizer.decode(row.ids[-window:], skip_special_tokens=False)
        return first_stop(tail, row.params.stop) is not None


def answer(job: Job, result: Completion | BaseException) -> None:
    """Resolve a job's future from the decode thread, on the loop that awaits it."""

    def resolve() -> None:
        if job.future.done():  # the caller gave up (cancelled)
            return
        if isinstance(result, BaseException):
            job.future.set_exception(result)
        else:
            job.future.set_result(result)

    with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is waiting
        job.loop.call_soon_threadsafe(resolve)


def first_stop(text: str, stops: list[str]) -> int | None:
    """End index of the earliest stop string in `text`, or None."""
    ends = [text.find(s) + len(s) for s in stops if s and s in text]
    return min(ends) if ends else None
