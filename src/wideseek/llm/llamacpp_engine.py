"""`LlamaCppEngine`: the Engine protocol over llama.cpp in process (llama-cpp-python's bindings),
every request in flight decoding in one llama.cpp batch. For CPUs without bf16 units, where
torch computes in fp32: a wide task of the shipped model ran 2.8x faster than on fp32 torch
(56 vs 159 s, bench/local_engine.py); with bf16 units (AMX) torch was faster (30 vs 49 s):
llama.cpp decodes faster and pre-fills slower.

Contract: as `LocalEngine`'s (the request side is shared, llm/queued_engine.py): token ids or
chat messages rendered with the model's own tokenizer and chat template; a `Completion` with the
sampled ids and the logprob of each, by the same definition and the same sampler
(`sample_next`: greedy, or temperature + top-k + top-p with a generator per request).
- The model: a spec whose base is a GGUF file (`resolve_model`). A LoRA adapter (the shipped
  model) is merged and written once as a GGUF file (llm/gguf_export.py, `weights`: q8_0 by
  default) into `<cache>/gguf/`, named by a digest of the adapter's files and the weights type,
  so a changed adapter is exported again (the 4 most recently used exports are kept: a
  training run's dev evaluations make one per checkpoint); a bare base is read from its own
  file.
- Scheduling: up to `slots` requests decode together, each in its own llama.cpp sequence with
  `context_length` cells of keys/values of its own; newcomers join between steps. A step is one
  `llama_decode` over every decoding row's next token plus pre-fill chunks of newcomers (at
  most `batch_tokens` tokens a step, a newcomer's whole prompt over several steps). Cells are
  not pooled across sequences (`kv_unified` off): pooled, every row's attention spans every
  sequence's cells (16 rows of 512 tokens: 57 vs 105 new tokens/s, one thread, a busy machine).
  `context_length` defaults to 4,096, the agents' own default.
- Prefix reuse: a finished request leaves its tokens in its sequence; a newcomer takes the free
  sequence that shares the longest prefix with its prompt (an agent's next turn extends its
  last one) and pre-fills only the rest.
- A failed `llama_decode` fails the step's requests with `EngineError`, never the engine: the
  next requests run.
- A GGUF file written elsewhere (`gguf=`) runs as given: RL's llama.cpp sampler writes each
  policy version's merged weights and opens an engine on it (train/rl/llamacpp_sampler.py).
Not here: prompt-lookup speculation, batch invariance (llama.cpp's batched kernels round a
row's numbers by what is beside it) and weight sync (a new version is a new engine).

This module knows llama.cpp's C API and the slots; not agents or HTTP.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wideseek.io import cache_home, file_sha256
from wideseek.llm.batched_decode import DecodeStats, sample_next
from wideseek.llm.engine import EngineError
from wideseek.llm.gguf_export import ExportWeights, export_gguf, source_gguf
from wideseek.llm.model_loading import load_tokenizer
from wideseek.llm.prefix_cache import shared_prefix
from wideseek.llm.queued_engine import Job, QueuedEngine, answer
from wideseek.llm.resolved_model import ModelSpec, ResolvedModel, resolve_model

# merged copies kept in <cache>/gguf (~145 MB each at q8_0): a training run's dev evaluations
# export one per checkpoint evaluated (engine.backend auto picks llama.cpp on CPUs without bf16)
KEEP_EXPORTS = 4
INSTALL_LLAMA_CPP = (
    'CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" '
    "pip install llama-cpp-python"
)


def _llama() -> Any:
    try:
        import llama_cpp

        # its log callback prints every line at or above this logger's own level to stderr
        quiet = logging.getLogger("llama-cpp-python")
        if quiet.level == logging.NOTSET:
            quiet.setLevel(logging.ERROR)
    except ImportError:
        raise EngineError(
            f"the llama.cpp engine needs llama-cpp-python: {INSTALL_LLAMA_CPP}"
        ) from None
    return llama_cpp


def gguf_for(
    model: ResolvedModel, weights: ExportWeights = "q8_0", cache_dir: Path | None = None
) -> Path:
    """The GGUF file llama.cpp runs for `model`: its base's own file for a bare base, else the
    adapter merged and exported once into `<cache>/gguf/` (named by its files' digest)."""
    if not model.is_adapter:
        return source_gguf(model)
    digest = hashlib.sha256(weights.encode())
    for path in sorted(model.dir.iterdir()):
        if path.is_file():
            digest.update(f"{path.name}:{file_sha256(path)}".encode())
    out = (cache_dir or cache_home()) / "gguf" / f"{model.name}-{digest.hexdigest()[:12]}.gguf"
    if out.is_file():
        out.touch()  # used now: the last to be pruned
    else:
        export_gguf(model, out, weights)
        prune_exports(out.parent, KEEP_EXPORTS)
    return out


def prune_exports(directory: Path, keep: int) -> None:
    """Delete all but the `keep` most recently used GGUF files in `directory` (an engine
    holding a deleted one keeps reading it: llama.cpp maps the file)."""
    files = sorted(directory.glob("*.gguf"), key=lambda f: f.stat().st_mtime_ns, reverse=True)
    for stale in files[keep:]:
        stale.unlink(missing_ok=True)


@dataclass(eq=False)
class _Sequence:
    """One llama.cpp sequence: the tokens whose keys/values it holds, and the job using it."""

    seq_id: int
    tokens: list[int] = field(default_factory=list)
    job: Job | None = None
    pending: list[int] = field(default_factory=list)  # prompt tokens not yet pre-filled


class LlamaCppEngine(QueuedEngine):
    """An Engine over llama.cpp, in process (see the module docstring)."""

    backend = "llama.cpp"  # what a run records it decoded with (run.json)

    def __init__(
        self,
        model: ModelSpec,
        *,
        context_length: int | None = None,
        model_name: str | None = None,
        slots: int = 16,
        batch_tokens: int = 512,
        threads: int | None = None,
        weights: ExportWeights = "q8_0",
        seed: int = 0,
        batch_window_s: float = 0.005,
        gguf: Path | None = None,
        tokenizer: Any = None,
    ) -> None:
        """`gguf`: a GGUF file of `model` already written (an RL policy's current weights,
        `gguf_export.write_gguf`), run instead of exporting one; `tokenizer`: `model`'s own,
        already loaded (None: loaded here)."""
        llama = _llama()
        resolved = resolve_model(model)
        tokenizer = tokenizer or load_tokenizer(resolved)
        self.gguf_path = gguf or gguf_for(resolved, weights)
        llama.llama_backend_init()
        params = llama.llama_model_default_params()
        self._model = llama.llama_model_load_from_file(str(self.gguf_path).encode(), params)
        if not self._model:
            raise EngineError(f"{self.gguf_path}: llama.cpp cannot load it")
        trained = int(llama.llama_model_n_ctx_train(self._model))
        context = min(context_length or 4096, trained)
        threads = threads or torch.get_num_threads()
        ctx_params = llama.llama_context_default_params()
        ctx_params.n_ctx = context * slots  # split evenly: `context` cells a sequence
        ctx_params.n_batch = ctx_params.n_ubatch = batch_tokens
        ctx_params.n_seq_max = slots
        ctx_params.kv_unified = False
        ctx_params.n_threads = ctx_params.n_threads_batch = threads
        self._ctx = llama.llama_init_from_model(self._model, ctx_params)
        if not self._ctx:
            llama.llama_model_free(self._model)
            raise EngineError(f"llama.cpp cannot make {slots} sequences of {context} tokens")
        self._memory = llama.llama_get_memory(self._ctx)
        vocab = llama.llama_model_get_vocab(self._model)
        n_vocab = int(llama.llama_vocab_n_tokens(vocab))
        eos = {int(llama.llama_vocab_eos(vocab)), int(llama.llama_vocab_eot(vocab))}
        if tokenizer.eos_token_id is not None:
            eos.add(tokenizer.eos_token_id)
        super().__init__(
            resolved,
            tokenizer,
            context_length=context,
            vocab_size=min(n_vocab, len(tokenizer)),
            eos_ids={i for i in eos if i >= 0},
            model_name=model_name,
            seed=seed,
            batch_window_s=batch_window_s,
            device=torch.device("cpu"),
        )
        self.n_vocab = n_vocab
        self.batch_tokens = batch_tokens
        self._batch = llama.llama_batch_init(batch_tokens, 0, 1)
        self._sequences = [_Sequence(i) for i in range(slots)]
        self._lock = threading.Lock()  # one decode loop at a time
        self.stats = DecodeStats()

    async def close(self) -> None:
        """Free llama.cpp's context and model (the engine is unusable after)."""
        self.free()

    def free(self) -> None:
        """`close` outside an event loop, once no request is in flight (an RL sampler replacing
        one version's engine by the next between steps)."""
        llama = _llama()
        with self._lock:
            if self._ctx:
                llama.llama_batch_free(self._batch)
                llama.llama_free(self._ctx)
                llama.llama_model_free(self._model)
                self._ctx = self._model = None

    # --- scheduling ------------------------------------------------------------------------
    def _decode_until_idle(self) -> None:
        with self._lock:
            if not self._ctx:
                for job in self._take(10**9):
                    answer(job, EngineError("llama.cpp engine closed"))
                return
            while True:
                free = [s for s in self._sequences if s.job is None]
                for job in self._take(len(free)):
                    self._admit(job, free)
                for seq in self._sequences:
                    if seq.job is not None and seq.job.future.cancelled():
                        self._release(seq)
                busy = [s for s in self._sequences if s.job is not None]
                if not busy:
                    return
                try:
                    self._step(busy)
                except Exception as e:  # a failed step fails its requests, not the engine
                    error = e if isinstance(e, EngineError) else EngineError(f"llama.cpp: {e}")
                    for seq in busy:
                        if seq.job is not None:
                            answer(seq.job, error)
                            self._release(seq, keep=False)

    def _admit(self, job: Job, free: list[_Sequence]) -> None:
        """Give `job` the free sequence sharing the longest prefix with its prompt."""
        prompt = job.row.prompt
        kept = {s.seq_id: shared_prefix(s.tokens, prompt) for s in free}
        seq = max(free, key=lambda s: (kept[s.seq_id], -len(s.tokens)))
        free.remove(seq)
        # the last prompt token goes through the model even when cached: it gives the logits
        shared = min(kept[seq.seq_id], len(prompt) - 1)
        _llama().llama_memory_seq_rm(self._memory, seq.seq_id, shared, -1)
        seq.tokens = prompt[:shared]
        seq.pending = prompt[shared:]
        seq.job = job
        self.stats.reused_tokens += shared

    def _release(self, seq: _Sequence, keep: bool = True) -> None:
        """The job leaves; its keys/values stay for a next prompt that extends them (`keep`)."""
        seq.job = None
        seq.pending = []
        if not keep:
            _llama().llama_memory_seq_rm(self._memory, seq.seq_id, -1, -1)
            seq.tokens = []

    def _step(self, busy: list[_Sequence]) -> None:
        """One llama_decode: each decoding row's last token, then pre-fill chunks."""
        items: list[tuple[_Sequence, list[int]]] = []
        room = self.batch_tokens
        decoding = [s for s in busy if not s.pending]
        for seq in decoding:
            assert seq.job is not None
            items.append((seq, [seq.job.row.ids[-1]]))
            room -= 1
        for seq in (s for s in busy if s.pending):
            if room <= 0:
                break
            chunk, seq.pending = seq.pending[:room], seq.pending[room:]
            items.append((seq, chunk))
            room -= len(chunk)
            self.stats.prefill_tokens += len(chunk)
        start = time.perf_counter()
        outputs = self._decode(items)
        # a step pre-filling only counts as pre-fill time; one with decoding rows as decode
        spent = time.perf_counter() - start
        if decoding:
            self.stats.decode_s += spent
        else:
            self.stats.prefill_s += spent
        if not outputs:
            return
        ready = [seq for seq, _ in outputs]
        logits = torch.from_numpy(np.stack([self._logits(i) for _, i in outputs]))
        rows = [seq.job.row for seq in ready if seq.job is not None]
        tokens, logps = sample_next(logits, rows)
        for seq, row, token, logp in zip(ready, rows, tokens.tolist(), logps.tolist(), strict=True):
            self._record(row, token, logp)
            if row.finish is not None:
                assert seq.job is not None
                answer(seq.job, self._completion(row))
                self._release(seq)
        self.stats.new_tokens += len(rows)

    def _decode(self, items: list[tuple[_Sequence, list[int]]]) -> list[tuple[_Sequence, int]]:
        """One llama_decode of each sequence's tokens; returns the sequences whose last token
        asks for logits (their prompt is all in), with its position in the batch."""
        llama = _llama()
        batch = self._batch
        n = 0
        outputs = []
        for seq, tokens in items:
            start = len(seq.tokens)
            for i, token in enumerate(tokens):
                batch.token[n] = token
                batch.pos[n] = start + i
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = seq.seq_id
                batch.logits[n] = False
                n += 1
            if not seq.pending:
                batch.logits[n - 1] = True
                outputs.append((seq, n - 1))
        batch.n_tokens = n
        status = llama.llama_decode(self._ctx, batch)
        if status != 0:
            for seq, _ in items:  # what it holds is unknown now: start it afresh
                llama.llama_memory_seq_rm(self._memory, seq.seq_id, -1, -1)
                seq.tokens = []
            raise EngineError(f"llama.cpp decode failed (status {status})")
        for seq, tokens in items:
            seq.tokens.extend(tokens)
        self.stats.steps += 1
        return outputs

    def _logits(self, position: int) -> np.ndarray:
        pointer = _llama().llama_get_logits_ith(self._ctx, position)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))[: self.vocab_size].copy()
