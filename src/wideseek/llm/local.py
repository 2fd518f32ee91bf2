"""LocalEngine: a transformers causal LM run in-process, with concurrent requests batched.

Contract: `await engine.generate(request) -> Completion` with the sampled token ids and the
logprob of each (Engine protocol, llm/engine.py). Both request shapes are accepted: token ids, or
chat messages + tools rendered with `engine.renderer` (the request side, shared with
`LlamaCppEngine`, is llm/queued_engine.py). Concurrent requests are decoded together
by one `BatchDecoder` (llm/batched_decode.py): the first waits `batch_window_s` for company,
later arrivals join the running batch at the next decode step, every request is answered as
soon as its own row finishes (eos, stop string, token budget), and a cancelled request (a
caller's timeout) leaves the batch at the next step.

Choices, and why:
- Batching is our compact decode loop over a preallocated slot cache (llm/slot_cache.py:
  written in place, where transformers' DynamicCache copies the whole cache at every step), not
  transformers' continuous batching (`init_continuous_batching`/`generate_batch`). That API
  does run on CPU in transformers 5.24 and returns logprobs, but it seeds one RNG per manager
  (not per request), has no stop strings, and a probe spent ~6 s warming up for 2 x 10 tokens
  on a 130k-param model.
- `Completion.logprobs[i]` is log softmax(logits / T)[token_i], T the request's temperature
  (greedy reports T = 1), before top-p truncation: the distribution the sampler drew from when
  top_p = 1 (the RL setting). A trainer recomputes it with `token_logprobs(logits, ids, T)`; RL
  importance ratios need the same definition on both sides. (vLLM's default is raw logits.)
- Token ids include the token that ended generation (eos, or the end of a stop string), as
  vLLM's do, so a next prompt extends them exactly. The text drops control tokens
  (`<|im_end|>`) and keeps a matched stop string, so `</tool_call>` stays parseable.
- Each request samples from its own `torch.Generator`, seeded by `SamplingParams.seed` or by
  the engine's seeded counter: a seeded request gives the same tokens whatever it is batched
  with (up to floating-point differences between batch shapes).
- On a CPU, decode steps of up to 4 rows read int8 copies of the weights (`int8_decode`,
  llm/int8_decode.py): a step at batch 1 is bound by reading the weights, and int8 halves that.
- `batch_invariant=True` trades speed for reproducibility: a request's numbers then depend on
  its own prompt and seed only (batched matmuls, masked attention widths and prefix-cache hits
  otherwise change the last bits of the logits, and so, rarely, a sampled token).
- A prompt that leaves no room in the context gives finish_reason "length" and empty text.
- Each finished generation's keys/values, and each prompt that shared nothing cached, stay in a
  `PrefixCache` (llm/prefix_cache.py), capped at `prefix_cache_tokens`; a prompt pre-fills only
  what follows its longest cached prefix: an agent's next prompt extends its last one (only the
  appended tokens), sibling subagents share their system prompt. Outputs are the same with and
  without it (tested token for token).
- The weights' dtype is `pick_dtype(dtype, device)` (llm/dtype.py): with "auto", bf16 on a
  GPU and on a CPU with native bf16 units (AMX / AVX512-BF16: measured ~3x faster prefill),
  fp32 on other CPUs (where bf16 is emulated, ~30x slower). `dtype_reason` says which and why.

The model runs in a worker thread (torch releases the GIL), so the event loop stays free. This
module knows models, tokenizers and request scheduling; not agents, tools or HTTP.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from transformers import PreTrainedModel

from wideseek.config import DEFAULT_SPECULATE_BATCH
from wideseek.llm.batched_decode import BatchDecoder, DecodeRow, DecodeStats, token_logprobs
from wideseek.llm.dtype import pick_dtype
from wideseek.llm.engine import EngineError
from wideseek.llm.gqa_attention import use_gqa_decode_attention
from wideseek.llm.int8_decode import int8_decode_supported, use_int8_for_decode
from wideseek.llm.model_loading import load_causal_lm, load_tokenizer
from wideseek.llm.prefix_cache import PrefixCache
from wideseek.llm.queued_engine import (
    InvalidPromptError,
    Job,
    QueuedEngine,
    answer,
    make_renderer,
)
from wideseek.llm.resolved_model import ModelSpec, ResolvedModel, resolve_model
from wideseek.llm.slot_cache import SlotCache

__all__ = ["InvalidPromptError", "LocalEngine", "make_renderer", "token_logprobs"]


class LocalEngine(QueuedEngine):
    """An Engine over a local Hugging Face causal-LM directory (model + tokenizer)."""

    backend = "torch"  # what a run records it decoded with (run.json)

    def __init__(
        self,
        model: ModelSpec,
        *,
        device: str | None = None,
        context_length: int | None = None,
        model_name: str | None = None,
        max_batch_size: int = 32,
        batch_window_s: float = 0.005,
        seed: int = 0,
        dtype: str = "auto",
        prefix_cache_tokens: int = 65_536,
        int8_decode: str = "auto",
        batch_invariant: bool = False,
        speculate: int = 0,
        speculate_batch: int = DEFAULT_SPECULATE_BATCH,
        loaded: tuple[PreTrainedModel, Any] | None = None,
    ) -> None:
        """`model`: a `ResolvedModel`, or a spec resolved here (llm/resolved_model.py).
        `loaded`: a model and tokenizer already in memory (an RL trainer's policy: shared,
        not copied, so every update is what the next rollout samples from); `model` then only
        names it and holds its recommendations. `int8_decode` ("auto" | "on" | "off"): decode
        steps of up to 4 rows read int8 copies of the weights (llm/int8_decode.py); auto = on a
        CPU, for a model this engine loaded itself (a trainer's shared policy keeps its own).
        `batch_invariant`: every request's tokens and logprobs are what it gets alone, whatever
        else is in flight (each row decoded in its own pass, every prompt pre-filled whole:
        no prefix cache), so a seeded run reproduces at any concurrency; slower.
        `speculate`: each greedy request checks up to this many prompt-lookup guesses per
        pass (llm/batched_decode.py; same tokens, fewer passes; 0: off) while at most
        `speculate_batch` requests decode together (0: any number)."""
        resolved: ResolvedModel = resolve_model(model)
        self.model_dir = resolved.dir
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        # a trainer's shared policy (`loaded`) keeps its own weights, modules and attention
        self.int8_decode = _wants_int8(int8_decode, self.device, shared=loaded is not None)
        if loaded:
            self.model, tokenizer = loaded
            self.dtype = next(self.model.parameters()).dtype
            self.dtype_reason = f"{self.dtype}: the given model's"
        else:
            self.dtype, self.dtype_reason = pick_dtype(dtype, self.device)
            tokenizer = load_tokenizer(resolved)
            self.model = self._load(resolved)
        super().__init__(
            resolved,
            tokenizer,
            context_length=context_length
            or int(getattr(self.model.config, "max_position_embeddings", 4096)),
            vocab_size=self.model.config.vocab_size,
            eos_ids=_eos_ids(self.model, tokenizer),
            model_name=model_name,
            seed=seed,
            batch_window_s=batch_window_s,
            device=self.device,
        )
        _require_full_attention(self.model.config)
        self._slots: SlotCache | None = None  # the decode batches' keys/values, reused
        self.stats = DecodeStats()  # summed over every batch so far: pre-fill vs decode time
        self.max_batch_size = max_batch_size
        self.batch_invariant = batch_invariant
        self.speculate = speculate
        self.speculate_batch = speculate_batch
        # Token sequences already run, so a prompt pre-fills only what it does not share with
        # one (0: off; off in batch-invariant mode, where a hit would change the numbers).
        self.prefix_cache = PrefixCache(0 if batch_invariant else prefix_cache_tokens)
        # Batch size after each admission of new requests (recent ones): for stats and tests.
        self.batch_sizes: deque[int] = deque(maxlen=1000)
        self._model_lock = threading.Lock()  # one decode loop at a time; weight sync waits for it

    # --- weights -------------------------------------------------------------------------
    def _load(self, model_spec: ModelSpec) -> PreTrainedModel:
        """The weights, with the decode-time speed-ups that leave pre-fill numbers as they are."""
        model = load_causal_lm(model_spec, dtype=self.dtype).to(self.device).eval()
        use_gqa_decode_attention(model)
        if self.int8_decode:
            use_int8_for_decode(model)
        return model

    def load_state_dict(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """In-process weight sync from a trainer holding the same architecture."""
        if self.int8_decode:
            raise EngineError("weight sync needs int8_decode='off' (int8 copies would go stale)")
        with self._model_lock:
            self.model.load_state_dict(state_dict)
            self.prefix_cache.clear()

    def weights_changed(self) -> None:
        """The weights were updated in place (a trainer sharing the model, `loaded`): forget
        the keys/values the old ones made. Waits for a running decode loop."""
        with self._model_lock:
            self.prefix_cache.clear()

    @contextlib.contextmanager
    def each_request_alone(self) -> Iterator[None]:
        """Decode as `batch_invariant=True` does while the block runs (no prefix cache): a
        trainer's seeded evaluation on its sampling engine then gives the figures a run of the
        same weights gives at any concurrency. The swaps wait for a running decode loop."""
        with self._model_lock:
            saved = self.batch_invariant, self.prefix_cache
            self.batch_invariant, self.prefix_cache = True, PrefixCache(0)
        try:
            yield
        finally:
            with self._model_lock:  # the keys/values cached before still match the weights
                self.batch_invariant, self.prefix_cache = saved

    # --- scheduling ------------------------------------------------------------------------
    def _decode_until_idle(self) -> None:
        """Decode queued requests, admitting newcomers between steps, until none is left."""
        with self._model_lock:
            cache = self.prefix_cache
            keep_kv = cache.max_tokens > 0  # finished rows leave with their keys/values
            decoder = BatchDecoder(
                self.model,
                self.eos_ids,
                self._stopped,
                keep_kv,
                cache=self._slot_cache(),
                batch_invariant=self.batch_invariant,
                speculate=self.speculate,
                speculate_batch=self.speculate_batch,
                stats=self.stats,  # counted as it goes: current when a request is answered
            )
            jobs: dict[int, Job] = {}
            try:
                while True:
                    room = self.max_batch_size - len(decoder)
                    if room > 0:
                        new = self._take(room)
                        jobs.update((id(j.row), j) for j in new)  # answered even if admit fails
                        for job in new:  # one by one: a sibling may reuse the last one's prompt
                            self._admit(job.row, decoder)
                        if new:
                            self.batch_sizes.append(len(decoder))
                    gone = [job for job in jobs.values() if job.future.cancelled()]
                    decoder.remove([job.row for job in gone])
                    for job in gone:
                        del jobs[id(job.row)]
                    if not len(decoder):
                        return
                    # read at every step: a loop still running when they change (the next
                    # requests came before it went idle) takes the new values at once
                    decoder.speculate = self.speculate
                    decoder.speculate_batch = self.speculate_batch
                    for row in decoder.step():
                        if row.kv is not None:
                            cache.put(row.prompt + row.ids[:-1], row.kv)
                            row.kv = None
                        answer(jobs.pop(id(row)), self._completion(row))
            except Exception as e:  # a failed batch fails its requests, not the engine
                for job in jobs.values():
                    answer(job, EngineError(f"local generation failed: {e}"))

    def _admit(self, row: DecodeRow, decoder: BatchDecoder) -> None:
        """Pre-fill `row` into the batch, starting from the longest prefix the cache holds; a
        prompt that shared nothing is cached itself (subagents started together share most of
        their first prompt)."""
        cache = self.prefix_cache
        if cache.max_tokens <= 0:  # off
            decoder.add([row])
            return
        hit = cache.lookup(row.prompt)
        if hit is not None:
            row.past, row.past_len = hit
        decoder.add([row])
        if hit is None:
            cache.put(row.prompt, decoder.prompt_kv(len(decoder) - 1))

    def _slot_cache(self) -> SlotCache:
        dtype = next(self.model.parameters()).dtype
        if self._slots is None or self._slots.dtype != dtype:  # new weights of another dtype
            self._slots = SlotCache.for_model(self.model)
        return self._slots


def _eos_ids(model: PreTrainedModel, tokenizer: Any) -> set[int]:
    ids = model.generation_config.eos_token_id
    ids = set(ids if isinstance(ids, list) else [] if ids is None else [ids])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


def _wants_int8(setting: str, device: torch.device, shared: bool) -> bool:
    if setting not in ("auto", "on", "off"):
        raise EngineError(f"int8_decode must be auto, on or off, not {setting!r}")
    if setting == "on" and not int8_decode_supported(device):
        raise EngineError(f"int8_decode: no int8 decode kernel on {device.type}")
    return setting == "on" or (setting == "auto" and not shared and int8_decode_supported(device))


def _require_full_attention(config) -> None:
    """The decoder's masks are full causal ones: refuse models with sliding-window layers."""
    kinds = set(getattr(config, "layer_types", None) or ["full_attention"])
    if kinds != {"full_attention"}:
        raise EngineError(f"local engine: layer types {sorted(kinds)} unsupported (full only)")
