"""LocalEngine: a transformers causal LM run in-process, with concurrent requests batched.

Contract: `await engine.generate(request) -> Completion` with the sampled token ids and the
logprob of each (Engine protocol, llm/base.py). Both request shapes are accepted: token ids, or
chat messages + tools rendered with `engine.renderer`. Requests that arrive within
`batch_window_s` of each other are decoded together in one left-padded batch with a KV cache;
rows finish independently (eos, stop string, token budget) and leave the batch as they do.

Choices, and why:
- Batching is a compact static batched decode loop, not transformers' continuous batching
  (`init_continuous_batching`/`generate_batch`). That API does run on CPU in transformers 5.24
  and returns logprobs, but it seeds one RNG per manager (not per request), has no stop strings,
  and in a probe spent ~6 s warming up for 2 x 10 tokens on a 130k-parameter model.
- `Completion.logprobs[i]` is log softmax(logits / T)[token_i], T the request's temperature
  (T = 0, greedy, reports T = 1), before top-p truncation. That is the distribution the sampler
  drew from when top_p = 1 (the RL setting), and what a trainer recomputes as
  `token_logprobs(logits, ids, T)` below; RL importance ratios need the same definition on both
  sides. vLLM's default differs (raw logits): a trainer mixing the two must know it.
- Token ids include the token that ended generation (eos or the last token of a stop string),
  as vLLM's do, so the next prompt can extend the ids exactly. The text drops control tokens
  (`<|im_end|>`) and keeps a matched stop string, so `</tool_call>` stays parseable.
- Each request samples from its own `torch.Generator` seeded by `SamplingParams.seed` (or by the
  engine's seeded counter), so a seeded request gives the same tokens whatever it is batched
  with, up to floating-point differences between batch shapes.
- A prompt that leaves no room in the context gives finish_reason "length" and empty text.

The model runs in a worker thread (torch releases the GIL), so the event loop stays free. This
module knows tokens, sampling and batching; it does not know agents, tools or HTTP.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache, PreTrainedModel

from wideseek.llm.base import (
    ChatRenderer,
    Completion,
    EngineError,
    FinishReason,
    GenerateRequest,
    SamplingParams,
)
from wideseek.types import Usage


class InvalidPromptError(EngineError, ValueError):
    """The request itself is unusable (no prompt, ids outside the vocabulary): HTTP 400."""


def make_renderer(model_dir: str | Path, tokenizer, context_length: int) -> ChatRenderer:
    """The renderer of the token path. TEMPORARY: at merge this becomes
    `HFChatRenderer.from_pretrained(model_dir, context_length=context_length)`."""
    from wideseek.llm.template_renderer import TemplateRenderer

    return TemplateRenderer(tokenizer, context_length)


def token_logprobs(logits: torch.Tensor, ids: torch.Tensor, temperature: float) -> torch.Tensor:
    """log softmax(logits / T) at `ids`: the logprob definition of `Completion.logprobs`.

    logits (..., V), ids (...) -> (...). T = 0 (greedy) counts as T = 1.
    """
    t = temperature if temperature > 0 else 1.0
    logp = torch.log_softmax(logits.float() / t, dim=-1)
    return logp.gather(-1, ids.unsqueeze(-1)).squeeze(-1)


@dataclass
class _Row:
    """One request inside a batch: its prompt, its rules, and what it has produced so far."""

    prompt: list[int]
    params: SamplingParams
    max_new: int
    generator: torch.Generator
    ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish: FinishReason | None = None


@dataclass
class _Job:
    row: _Row
    future: asyncio.Future[Completion]


class LocalEngine:
    """An Engine over a local Hugging Face causal-LM directory (model + tokenizer)."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        device: str | None = None,
        context_length: int | None = None,
        model_name: str | None = None,
        max_batch_size: int = 32,
        batch_window_s: float = 0.005,
        seed: int = 0,
    ) -> None:
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise EngineError(f"{self.model_dir}: not a model directory (no config.json)")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        # fp32 on CPU: bf16 autocast measured ~30x slower on this class of machine.
        self.dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.model = self._load(self.model_dir)
        self.context_length = context_length or int(
            getattr(self.model.config, "max_position_embeddings", 4096)
        )
        self.model_name = model_name or self.model_dir.name
        self.renderer: ChatRenderer | None = make_renderer(
            self.model_dir, self.tokenizer, self.context_length
        )
        self.eos_ids = self._eos_ids()
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = next(iter(self.eos_ids))
        self.max_batch_size = max_batch_size
        self.batch_window_s = batch_window_s
        self._seeds = random.Random(seed)
        self.batch_sizes: deque[int] = deque(maxlen=1000)  # recent batch sizes, for stats/tests
        self._model_lock = threading.Lock()  # one batch at a time; reload waits for it
        self._queue: asyncio.Queue[_Job] | None = None
        self._batcher: asyncio.Task[None] | None = None

    # --- weights -------------------------------------------------------------------------
    def _load(self, path: Path) -> PreTrainedModel:
        try:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=self.dtype)
        except (OSError, ValueError) as e:
            raise EngineError(f"{path}: cannot load model ({e})") from e
        return model.to(self.device).eval()

    def reload(self, checkpoint_dir: str | Path) -> None:
        """Swap in the weights of `checkpoint_dir` (same tokenizer); waits for the running batch.

        Requests queued meanwhile are decoded with the new weights.
        """
        model = self._load(Path(checkpoint_dir))
        with self._model_lock:
            self.model = model

    def load_state_dict(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """In-process weight sync from a trainer holding the same architecture."""
        with self._model_lock:
            self.model.load_state_dict(state_dict)

    def _eos_ids(self) -> set[int]:
        ids = self.model.generation_config.eos_token_id
        ids = set(ids if isinstance(ids, list) else [] if ids is None else [ids])
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids

    # --- the Engine protocol -------------------------------------------------------------
    async def generate(self, request: GenerateRequest) -> Completion:
        prompt = self._prompt_ids(request)
        room = self.context_length - len(prompt)
        params = request.sampling
        max_new = room if params.max_tokens is None else min(params.max_tokens, room)
        usage = Usage(prompt_tokens=len(prompt))
        if max_new <= 0:
            return Completion(
                text="", token_ids=[], logprobs=[], finish_reason="length", usage=usage
            )
        seed = params.seed if params.seed is not None else self._seeds.getrandbits(63)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        row = _Row(prompt=prompt, params=params, max_new=max_new, generator=generator)
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        self._ensure_batcher().put_nowait(_Job(row, future))
        return await future

    def _prompt_ids(self, request: GenerateRequest) -> list[int]:
        if request.prompt_token_ids is not None:
            prompt = list(request.prompt_token_ids)
        elif request.messages is not None and self.renderer is not None:
            prompt = self.renderer.render_prompt(request.messages, request.tools)
        else:
            raise InvalidPromptError("request has neither prompt_token_ids nor messages")
        vocab = self.model.config.vocab_size
        if not prompt:
            raise InvalidPromptError("empty prompt")
        if min(prompt) < 0 or max(prompt) >= vocab:
            raise InvalidPromptError(f"prompt token ids must lie in [0, {vocab})")
        return prompt

    # --- batching ------------------------------------------------------------------------
    def _ensure_batcher(self) -> asyncio.Queue[_Job]:
        # One batcher per event loop: tests and servers may each run their own loop.
        loop = asyncio.get_running_loop()
        if self._batcher is None or self._batcher.done() or self._batcher.get_loop() is not loop:
            self._queue = asyncio.Queue()
            self._batcher = loop.create_task(self._serve_batches(self._queue))
        assert self._queue is not None
        return self._queue

    async def _serve_batches(self, queue: asyncio.Queue[_Job]) -> None:
        while True:
            jobs = [await queue.get()]
            await asyncio.sleep(self.batch_window_s)  # let concurrent requests join
            while not queue.empty() and len(jobs) < self.max_batch_size:
                jobs.append(queue.get_nowait())
            self.batch_sizes.append(len(jobs))
            try:
                await asyncio.to_thread(self._run_batch, [j.row for j in jobs])
            except Exception as e:  # one bad batch fails its requests, not the engine
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(EngineError(f"local generation failed: {e}"))
                continue
            for job in jobs:
                if not job.future.done():
                    job.future.set_result(self._completion(job.row))

    def _completion(self, row: _Row) -> Completion:
        text = self.tokenizer.decode(row.ids, skip_special_tokens=True)
        hit = _first_stop(text, row.params.stop)
        if hit is not None:
            text = text[:hit]
        return Completion(
            text=text,
            token_ids=row.ids,
            logprobs=row.logprobs,
            finish_reason=row.finish or "length",
            usage=Usage(prompt_tokens=len(row.prompt), completion_tokens=len(row.ids)),
        )

    def _run_batch(self, rows: list[_Row]) -> None:
        with self._model_lock:
            decode_batch(self.model, rows, self.pad_id, self.eos_ids, self._stopped)

    def _stopped(self, row: _Row) -> bool:
        """Whether the row's newest token completed one of its stop strings."""
        if not row.params.stop:
            return False
        # A stop string of n characters spans at most n tokens (plus one split UTF-8 char).
        window = max(len(s) for s in row.params.stop) + 1
        tail = self.tokenizer.decode(row.ids[-window:], skip_special_tokens=False)
        return _first_stop(tail, row.params.stop) is not None


def _first_stop(text: str, stops: list[str]) -> int | None:
    """End index of the earliest stop string in `text`, or None."""
    ends = [text.find(s) + len(s) for s in stops if s and s in text]
    return min(ends) if ends else None


@torch.inference_mode()
def decode_batch(model, rows: list[_Row], pad_id: int, eos_ids: set[int], stopped) -> None:
    """Decode `rows` together, filling each row's ids, logprobs and finish reason in place."""
    device = model.device
    # 1) left-pad the prompts; positions count real tokens only
    width = max(len(r.prompt) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        input_ids[i, width - len(r.prompt) :] = torch.tensor(r.prompt)
        mask[i, width - len(r.prompt) :] = 1
    input_ids, mask = input_ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (B, T)
    cache = DynamicCache()
    cache_kw = _cache_keyword(model)
    active = list(range(len(rows)))  # rows still decoding, in batch order
    # 2) prefill, keeping only the last position's logits
    out = model(
        input_ids=input_ids,
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
        logits_to_keep=1,
        **{cache_kw: cache},
    )
    logits = out.logits[:, -1, :]  # (B, V)
    last_pos = positions[:, -1:]  # (B, 1)
    while True:
        # 3) sample one token per active row and record it
        tokens, logps = sample_next(logits, [rows[i] for i in active])
        for j, i in enumerate(active):
            row = rows[i]
            row.ids.append(int(tokens[j]))
            row.logprobs.append(float(logps[j]))
            if row.ids[-1] in eos_ids or stopped(row):
                row.finish = "stop"
            elif len(row.ids) >= row.max_new:
                row.finish = "length"
        keep = [j for j, i in enumerate(active) if rows[i].finish is None]
        if not keep:
            return
        # 4) drop finished rows from the batch and its cache
        if len(keep) < len(active):
            index = torch.tensor(keep, device=device)
            cache.batch_select_indices(index)
            mask, last_pos, tokens = mask[index], last_pos[index], tokens[index]
            active = [active[j] for j in keep]
        # 5) one decode step for the rest
        mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=-1)  # (b, T + 1)
        last_pos = last_pos + 1
        out = model(
            input_ids=tokens.view(-1, 1),
            attention_mask=mask,
            position_ids=last_pos,
            use_cache=True,
            **{cache_kw: cache},
        )
        logits = out.logits[:, -1, :]


def _cache_keyword(model) -> str:
    # transformers 5.x renamed `past_key_values` to `cache`; older releases only know the former.
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def sample_next(logits: torch.Tensor, rows: list[_Row]) -> tuple[torch.Tensor, torch.Tensor]:
    """Next token of each row (greedy at T = 0, else temperature + top-p) and its logprob.

    logits (b, V) -> tokens (b,), logprobs (b,) as defined by `token_logprobs`. Sampling is
    inverse-CDF with one uniform draw per row from the row's own generator: vectorised over the
    batch, yet each request's randomness depends on its seed only.
    """
    logits = logits.float()
    temps = torch.tensor([r.params.temperature or 1.0 for r in rows], device=logits.device)
    logp = torch.log_softmax(logits / temps.unsqueeze(-1), dim=-1)  # (b, V)
    tokens = logp.argmax(dim=-1)  # (b,) greedy; sampled rows are overwritten below
    sampled = [j for j, r in enumerate(rows) if r.params.temperature > 0]
    if sampled:
        index = torch.tensor(sampled, device=logits.device)
        tokens[index] = _inverse_cdf_sample(logp[index], [rows[j] for j in sampled])
    return tokens, logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def _inverse_cdf_sample(logp: torch.Tensor, rows: list[_Row]) -> torch.Tensor:
    """logp (s, V) -> sampled ids (s,), restricted to each row's top-p nucleus."""
    device = logp.device
    probs, order = logp.exp(), None  # (s, V)
    if any(r.params.top_p < 1.0 for r in rows):  # the sort is costly: only when a row needs it
        probs, order = probs.sort(dim=-1, descending=True)  # most likely first
        top_p = torch.tensor([r.params.top_p for r in rows], device=device).unsqueeze(-1)
        # Keep the smallest prefix whose mass reaches top_p (the first token always stays).
        probs = probs.masked_fill(probs.cumsum(-1) - probs >= top_p, 0.0)
    cdf = probs.cumsum(-1)  # (s, V)
    u = torch.cat([torch.rand(1, generator=r.generator, device=device) for r in rows])  # (s,)
    pick = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(-1)).clamp(max=cdf.shape[-1] - 1)
    return pick.squeeze(-1) if order is None else order.gather(-1, pick).squeeze(-1)
