"""Batched autoregressive decoding over a preallocated KV cache; rows join and leave between steps.

Contract: a `BatchDecoder` holds the running batch of a causal LM. `add(rows)` pre-fills new
rows (each alone, in chunks of `prefill_chunk` tokens, positions counting its own tokens) and
appends them to the batch; `step()` samples one token for every row, records it with its
logprob, removes the rows that finished (eos, stop callback, token budget) and runs one forward
step for the rest; `remove(rows)` drops rows nobody waits for any more. So requests arriving
while others decode join at the next step instead of waiting for the whole batch, and a
finished row never costs another forward pass.

Keys and values live in a `SlotCache` (llm/slot_cache.py): row i in slot i, written in place,
with no padding; a finished row's slot is refilled by moving the last row into it. Each pass
gets a 4D additive mask that hides every row's columns past its own length, so rows of any
lengths share one forward step without padding tokens ever going through the model.

A row may come with `past`, the keys/values of its prompt's first `past_len` tokens (an agent's
previous turn, llm/prefix_cache.py): they are copied into its slot and only the rest of its
prompt is pre-filled. With `keep_kv`, a finished row leaves with `kv`, the keys/values of its
prompt and generated ids but the last (which never went through the model).

With `speculate` = k > 0, every greedy row guesses its next k tokens by prompt lookup
(`lookup_draft`: the tokens that followed the last occurrence of its latest n-gram in its own
prompt and output — agents copy names, numbers, URLs and call boilerplate from their context),
and the step's one pass takes each row's [sampled token, guesses] (rows with fewer guesses are
padded): the guesses a row's own argmax agrees with are kept, up to the first disagreement,
whose logits give its next token. The tokens are those of plain greedy decoding; a pass over a
few tokens a row costs about what a one-token step costs where reading the weights bounds it
(a CPU at small batches). Sampled rows decode one token a step, in the same pass.

Logprobs are log softmax(logits / T) of the sampled token, before top-p truncation
(`token_logprobs` computes the same for a trainer). Sampling is inverse-CDF with one uniform
draw per row from that row's own `torch.Generator`: vectorised over the batch, yet a request's
randomness depends on its own seed only.

This module knows tensors, the KV cache and sampling; it does not know tokenizers (stop strings
are checked by the caller's `stopped` callback), requests, threads or asyncio.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

import torch

from wideseek.llm.engine import FinishReason, SamplingParams
from wideseek.llm.int8_decode import decode_step
from wideseek.llm.slot_cache import LayerKV, SlotCache


@dataclass(eq=False)
class DecodeRow:
    """One sequence: its prompt, its sampling rules, and what it has produced so far."""

    prompt: list[int]
    params: SamplingParams
    max_new: int
    generator: torch.Generator
    ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish: FinishReason | None = None
    past: tuple[LayerKV, ...] | None = None  # keys/values of prompt[:past_len]
    past_len: int = 0
    kv: tuple[LayerKV, ...] | None = None  # set at finish (keep_kv)


@dataclass
class DecodeStats:
    """Where a decoder's time went: pre-fill (new prompt tokens) vs decode steps."""

    prefill_tokens: int = 0
    reused_tokens: int = 0  # prompt tokens whose keys/values came from the prefix cache
    prefill_s: float = 0.0
    steps: int = 0  # decode steps that ran the model (one pass each; one per row if invariant)
    new_tokens: int = 0  # generated tokens: one per row at each step, plus kept guesses
    decode_s: float = 0.0
    drafted: int = 0  # prompt-lookup guesses checked (speculate > 0)
    accepted: int = 0  # guesses kept: tokens that cost no pass of their own


def record_token(
    row: DecodeRow,
    token: int,
    logp: float,
    eos_ids: Collection[int],
    stopped: Callable[[DecodeRow], bool],
) -> None:
    """Append a sampled token to `row` and mark it finished: "stop" at an eos token or a
    completed stop string (`stopped`), "length" at its token budget."""
    row.ids.append(token)
    row.logprobs.append(logp)
    if token in eos_ids or stopped(row):
        row.finish = "stop"
    elif len(row.ids) >= row.max_new:
        row.finish = "length"


def lookup_draft(context: list[int], k: int, ngram: tuple[int, ...] = (3, 2)) -> list[int]:
    """Up to `k` tokens guessed to follow `context`: those after the latest earlier occurrence
    of its last n tokens, for the first n of `ngram` that occurs; [] when none does."""
    if k <= 0 or len(context) < 2:
        return []
    ids = torch.tensor(context)
    for n in ngram:
        if len(context) <= n:
            continue
        tail = ids[-n:]
        # windows ids[i:i+n] for i < len - n (the tail itself excluded), compared at once
        windows = ids[:-1].unfold(0, n, 1)  # (len - n, n)
        hits = (windows == tail).all(dim=1).nonzero().flatten()
        if len(hits):
            after = int(hits[-1]) + n
            return context[after : after + k]
    return []


def token_logprobs(logits: torch.Tensor, ids: torch.Tensor, temperature: float) -> torch.Tensor:
    """log softmax(logits / T) at `ids`: the definition of a completion's logprobs.

    logits (..., V), ids (...) -> (...). T = 0 (greedy) counts as T = 1.
    """
    t = temperature if temperature > 0 else 1.0
    logp = torch.log_softmax(logits.float() / t, dim=-1)
    return logp.gather(-1, ids.unsqueeze(-1)).squeeze(-1)


class BatchDecoder:
    def __init__(
        self,
        model,
        eos_ids: Iterable[int],
        stopped: Callable[[DecodeRow], bool] = lambda row: False,
        keep_kv: bool = False,
        cache: SlotCache | None = None,
        prefill_chunk: int = 2048,
        batch_invariant: bool = False,
        speculate: int = 0,
        speculate_batch: int = 0,
        stats: DecodeStats | None = None,
    ) -> None:
        """`cache`: a SlotCache to reuse across batches (its memory stays allocated).
        `batch_invariant`: run each row's decode pass alone, so its logits are bit for bit
        those it gets in any batch (slower: one pass per row instead of one per step).
        `speculate`: prompt-lookup guesses checked per pass for each greedy row (0: off),
        while the batch holds at most `speculate_batch` rows (0: any number; batch-invariant
        rows always speculate, as if alone).
        `stats`: where to count (an engine's running totals, current before a row is answered);
        default: a new DecodeStats."""
        self.batch_invariant = batch_invariant
        self.speculate = speculate
        self.speculate_batch = speculate_batch
        self.model = model
        self.keep_kv = keep_kv
        self.eos_ids = set(eos_ids)
        self.stopped = stopped
        self.device = model.device
        self.prefill_chunk = prefill_chunk
        self.cache = cache if cache is not None else SlotCache.for_model(model)
        # transformers 5.x renamed `past_key_values` to `cache`; older releases know the former.
        # A peft model's forward takes **kwargs: the base model's signature tells.
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        params = inspect.signature(base.forward).parameters
        self.cache_kw = "cache" if "cache" in params else "past_key_values"
        self.rows: list[DecodeRow] = []
        self.lengths = torch.zeros(0, dtype=torch.long, device=self.device)  # tokens in cache
        self.logits = torch.zeros((0, 0), device=self.device)  # (b, V): next-token logits
        self.stats = stats if stats is not None else DecodeStats()

    def __len__(self) -> int:
        return len(self.rows)

    @torch.inference_mode()
    def add(self, rows: list[DecodeRow]) -> None:
        start = time.perf_counter()
        for row in rows:
            slot = len(self.rows)
            self.cache.reserve(slot + 1, len(row.prompt) + min(row.max_new, 256))
            done = 0
            if row.past is not None:
                assert 0 < row.past_len < len(row.prompt)
                self.cache.write(slot, row.past)
                done, row.past = row.past_len, None  # the slot holds it from here on
            logits = self._prefill(slot, row.prompt, done)
            self.rows.append(row)
            self.lengths = torch.cat([self.lengths, self.lengths.new_tensor([len(row.prompt)])])
            self.logits = logits if slot == 0 else torch.cat([self.logits, logits])
            self.stats.prefill_tokens += len(row.prompt) - done
            self.stats.reused_tokens += done
        self.stats.prefill_s += time.perf_counter() - start

    def prompt_kv(self, index: int) -> tuple[LayerKV, ...]:
        """A copy of the keys/values of row `index`'s prompt (right after its pre-fill)."""
        return self.cache.read(index, len(self.rows[index].prompt))

    @torch.inference_mode()
    def remove(self, rows: list[DecodeRow]) -> None:
        """Take `rows` out of the batch unfinished (their caller gave up)."""
        gone = set(map(id, rows))
        if gone & set(map(id, self.rows)):
            self._keep([id(r) not in gone for r in self.rows])

    @torch.inference_mode()
    def step(self) -> list[DecodeRow]:
        """Sample a token for every row; return the rows that finished (now out of the batch)."""
        start = time.perf_counter()
        # 1) sample one token per row and record it
        tokens, logps = sample_next(self.logits, self.rows)  # (b,), (b,)
        for row, token, logp in zip(self.rows, tokens.tolist(), logps.tolist(), strict=True):
            self._record(row, token, logp)
        self.stats.new_tokens += len(tokens)
        # 2) drop the rows that finished (their slots are refilled from the end)
        finished, kept = self._drop_finished()
        tokens = tokens[kept]
        # 3) one forward pass for the rest: each row's token in its own next column, followed
        # by its guesses of the tokens after it when it speculates
        if self.rows:
            self._advance(tokens.tolist())
            finished += self._drop_finished()[0]  # rows that ended inside their kept guesses
        self.stats.decode_s += time.perf_counter() - start
        return finished

    # --- internals -------------------------------------------------------------------------
    def _record(self, row: DecodeRow, token: int, logp: float) -> None:
        record_token(row, token, logp, self.eos_ids, self.stopped)

    def _drop_finished(self) -> tuple[list[DecodeRow], torch.Tensor]:
        """Take the finished rows out (with their keys/values when keep_kv); returns them and
        the kept rows' old indices, in their new order."""
        finished = [r for r in self.rows if r.finish is not None]
        if self.keep_kv:
            for i, row in enumerate(self.rows):
                if row.finish is not None:
                    row.kv = self.cache.read(i, int(self.lengths[i]))
        return finished, self._keep([r.finish is None for r in self.rows])

    def _draft(self, row: DecodeRow) -> list[int]:
        """Prompt-lookup guesses for a greedy row that goes on ([] for a sampled one)."""
        if self.speculate <= 0 or row.params.temperature > 0:
            return []
        # a crowded batch skips guessing (its rows fill the pass already), but a batch-invariant
        # row runs alone, and must guess alike whoever is beside it
        crowded = self.speculate_batch and len(self.rows) > self.speculate_batch
        if crowded and not self.batch_invariant:
            return []
        room = row.max_new - len(row.ids)
        return lookup_draft(row.prompt + row.ids, min(self.speculate, room))

    def _advance(self, tokens: list[int]) -> None:
        """One decode pass over every row's [token, *guesses]: the guesses each row's argmax
        agrees with are kept, up to the first disagreement, whose logits give its next token;
        the cache and the row's length end where its kept tokens end."""
        seqs = [[token, *self._draft(row)] for token, row in zip(tokens, self.rows, strict=True)]
        self.cache.reserve(len(self.rows), int(self.lengths.max()) + max(map(len, seqs)))
        with decode_step():  # small passes may read int8 weights (llm/int8_decode.py)
            if self.batch_invariant:  # each row alone: its numbers cannot depend on the others
                outs = [self._decode_pass(seqs[i : i + 1], i)[0] for i in range(len(seqs))]
            else:
                outs = list(self._decode_pass(seqs, 0))  # (q, V) a row
        self.stats.steps += 1
        kept = [
            self._check_guesses(row, seq[1:], logits) if len(seq) > 1 else 0
            for row, seq, logits in zip(self.rows, seqs, outs, strict=True)
        ]
        # the row's token and kept guesses are in the cache now, but the last token of a
        # finished row never counts as in it (see kv); one tensor op for the whole batch
        grown = [k + (row.finish is None) for k, row in zip(kept, self.rows, strict=True)]
        self.lengths += torch.tensor(grown, device=self.device)
        self.logits = torch.stack([logits[k] for logits, k in zip(outs, kept, strict=True)])

    def _check_guesses(self, row: DecodeRow, draft: list[int], logits: torch.Tensor) -> int:
        """Record the guesses of `draft` that the argmax of `logits` (q, V; i predicts what
        follows the pass's token i) agrees with, until one disagrees or the row finishes;
        returns how many were kept."""
        logp = torch.log_softmax(logits[: len(draft)].float(), dim=-1)
        best = logp.argmax(dim=-1).tolist()
        kept = 0
        for i, guess in enumerate(draft):
            if best[i] != guess:
                break
            self._record(row, guess, float(logp[i, guess]))
            kept += 1
            if row.finish is not None:
                break
        self.stats.drafted += len(draft)
        self.stats.accepted += kept
        self.stats.new_tokens += kept
        return kept

    def _decode_pass(self, seqs: list[list[int]], start: int) -> torch.Tensor:
        """One pass of rows start..start+n, row i's tokens `seqs[i]` in its next columns
        (shorter ones padded with their first token: the padding's keys land past the row's
        length, unseen and later overwritten); logits (n, q, V)."""
        width = max(map(len, seqs))
        ids = torch.tensor([seq + seq[:1] * (width - len(seq)) for seq in seqs], device=self.device)
        firsts = self.lengths[start : start + len(seqs)].unsqueeze(-1)  # (n, 1)
        positions = firsts + torch.arange(width, device=self.device)  # (n, q)
        return self._pass(ids, start, positions, keep=0)

    def _prefill(self, slot: int, prompt: list[int], done: int) -> torch.Tensor:
        """Run prompt[done:] through the model into `slot`, in chunks; the last logits (1, V)."""
        logits = None
        for first in range(done, len(prompt), self.prefill_chunk):
            chunk = prompt[first : first + self.prefill_chunk]
            ids = torch.tensor([chunk], device=self.device)
            positions = torch.arange(first, first + len(chunk), device=self.device).unsqueeze(0)
            logits = self._pass(ids, slot, positions, keep=1)[:, -1, :]  # only the last counts
        assert logits is not None, "a row needs at least one prompt token to pre-fill"
        return logits

    def _pass(
        self, ids: torch.Tensor, start: int, positions: torch.Tensor, keep: int
    ) -> torch.Tensor:
        """One causal pass of `ids` (n, q) into rows start..start+n at columns `positions`
        (n, q); logits (n, q or keep, V) (`keep`: the last positions only, 0: all)."""
        # query j of row i (at column positions[i, j]) sees that row's columns up to it
        visible = torch.arange(int(positions.max()) + 1, device=self.device)
        visible = visible <= positions.unsqueeze(-1)  # (n, q, width)
        self.cache.plan(start, positions)
        out = self.model(
            input_ids=ids,
            attention_mask=self._additive(visible.unsqueeze(1)),
            position_ids=positions,
            use_cache=True,
            logits_to_keep=keep,
            **{self.cache_kw: self.cache},
        )
        return out.logits

    def _additive(self, visible: torch.Tensor) -> torch.Tensor:
        """A boolean visibility mask as the additive float mask every attention kernel takes."""
        dtype = self.cache.dtype
        return torch.zeros(visible.shape, dtype=dtype, device=self.device).masked_fill(
            ~visible, torch.finfo(dtype).min
        )

    def _keep(self, keep: list[bool]) -> torch.Tensor:
        """Keep the rows flagged True; each gap is filled by the batch's last kept row (one KV
        copy per gap, not a shift of every row after it). Returns the kept rows' old indices,
        in their new order."""
        n = sum(keep)
        if n == len(keep):
            return torch.arange(n, device=self.device)
        tail = [i for i in range(n, len(keep)) if keep[i]]  # kept rows that move forward
        order = []
        for slot in range(n):
            if not keep[slot]:
                src = tail.pop()
                self.cache.move(src, slot, int(self.lengths[src]))
                order.append(src)
            else:
                order.append(slot)
        index = torch.tensor(order, dtype=torch.long, device=self.device)
        self.rows = [self.rows[i] for i in order]
        self.lengths, self.logits = self.lengths[index], self.logits[index]
        return index


def sample_next(logits: torch.Tensor, rows: list[DecodeRow]) -> tuple[torch.Tensor, torch.Tensor]:
    """Next token of each row (greedy at T = 0, else temperature + top-k + top-p) and its
    logprob.

    logits (b, V) -> tokens (b,), logprobs (b,) as defined by `token_logprobs`.
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


def _inverse_cdf_sample(logp: torch.Tensor, rows: list[DecodeRow]) -> torch.Tensor:
    """logp (s, V) -> sampled ids (s,), restricted to each row's k likeliest tokens (top_k > 0)
    and then to the top-p nucleus of those (renormalised), as vLLM and transformers cut."""
    device = logp.device
    probs, order = logp.exp(), None  # (s, V)
    vocab = probs.shape[-1]
    cut_k = [r.params.top_k if r.params.top_k else vocab for r in rows]
    if any(r.params.top_p < 1.0 for r in rows) or min(cut_k) < vocab:  # the sort is costly
        probs, order = probs.sort(dim=-1, descending=True)  # most likely first
        top_k = torch.tensor(cut_k, device=device).unsqueeze(-1)
        probs = probs.masked_fill(torch.arange(vocab, device=device) >= top_k, 0.0)
        top_p = torch.tensor([r.params.top_p for r in rows], device=device).unsqueeze(-1)
        # Keep the smallest prefix whose mass reaches top_p (the first token always stays).
        mass = probs.sum(-1, keepdim=True)
        probs = probs.masked_fill((probs.cumsum(-1) - probs) / mass >= top_p, 0.0)
    cdf = probs.cumsum(-1)  # (s, V)
    u = torch.cat([torch.rand(1, generator=r.generator, device=device) for r in rows])  # (s,)
    pick = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(-1)).clamp(max=cdf.shape[-1] - 1)
    return pick.squeeze(-1) if order is None else order.gather(-1, pick).squeeze(-1)
