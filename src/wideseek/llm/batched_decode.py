"""Batched autoregressive decoding with a KV cache; rows join and leave between steps.

Contract: a `BatchDecoder` holds the running batch of a causal LM. `add(rows)` prefills new
rows (left-padded, positions counting real tokens only) and merges them into the batch;
`step()` samples one token for every row, records it with its logprob, removes the rows that
finished (eos, stop callback, token budget) and runs one forward step for the rest;
`remove(rows)` drops rows nobody waits for any more. So
requests arriving while others decode join at the next step instead of waiting for the whole
batch, and a finished row never costs another forward pass.

A row may come with `past`, the keys/values of its prompt's first `past_len` tokens (an agent's
previous turn, llm/prefix_cache.py): it is pre-filled alone on the rest of its prompt and then
merged like any other. With `keep_kv`, a finished row leaves with `kv`, the keys/values of its
prompt and generated ids but the last (which never went through the model).

Logprobs are log softmax(logits / T) of the sampled token, before top-p truncation
(`token_logprobs` computes the same for a trainer). Sampling is inverse-CDF with one uniform
draw per row from that row's own `torch.Generator`: vectorised over the batch, yet a request's
randomness depends on its own seed only.

This module knows tensors, the KV cache and sampling; it does not know tokenizers (stop strings
are checked by the caller's `stopped` callback), requests, threads or asyncio.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from wideseek.llm.base import FinishReason, SamplingParams


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
    past: tuple[tuple[torch.Tensor, torch.Tensor], ...] | None = None  # KV of prompt[:past_len]
    past_len: int = 0
    kv: tuple[tuple[torch.Tensor, torch.Tensor], ...] | None = None  # set at finish (keep_kv)


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
        pad_id: int,
        eos_ids: Iterable[int],
        stopped: Callable[[DecodeRow], bool] = lambda row: False,
        keep_kv: bool = False,
    ) -> None:
        self.model = model
        self.keep_kv = keep_kv
        self.pad_id = pad_id
        self.eos_ids = set(eos_ids)
        self.stopped = stopped
        self.device = model.device
        # transformers 5.x renamed `past_key_values` to `cache`; older releases know the former.
        params = inspect.signature(model.forward).parameters
        self.cache_kw = "cache" if "cache" in params else "past_key_values"
        self.rows: list[DecodeRow] = []
        self.cache: DynamicCache | None = None
        self.mask = torch.zeros((0, 0), dtype=torch.long, device=self.device)  # (b, T)
        self.last_pos = torch.zeros((0, 1), dtype=torch.long, device=self.device)  # (b, 1)
        self.logits = torch.zeros((0, 0), device=self.device)  # (b, V): next-token logits

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def can_merge(self) -> bool:
        """New rows can join a running batch only over plain full-attention cache layers."""
        return self.cache is None or all(type(layer) is DynamicLayer for layer in self.cache.layers)

    @torch.inference_mode()
    def add(self, rows: list[DecodeRow]) -> None:
        cold = [r for r in rows if r.past is None]
        warm = [r for r in rows if r.past is not None]
        groups = [(cold, self._prefill(cold))] if cold else []
        groups += [([r], self._prefill_after(r)) for r in warm]
        for group, (cache, mask, last_pos, logits) in groups:
            if self.cache is None or not self.rows:
                self.cache, self.mask, self.last_pos, self.logits = cache, mask, last_pos, logits
            else:
                self._merge(cache, mask)
                self.last_pos = torch.cat([self.last_pos, last_pos])
                self.logits = torch.cat([self.logits, logits])
            self.rows.extend(group)

    @torch.inference_mode()
    def remove(self, rows: list[DecodeRow]) -> None:
        """Take `rows` out of the batch unfinished (their caller gave up)."""
        gone = set(map(id, rows))
        if gone & set(map(id, self.rows)):
            self._keep([id(r) not in gone for r in self.rows])

    @torch.inference_mode()
    def step(self) -> list[DecodeRow]:
        """Sample a token for every row; return the rows that finished (now out of the batch)."""
        # 1) sample one token per row and record it
        tokens, logps = sample_next(self.logits, self.rows)  # (b,), (b,)
        for row, token, logp in zip(self.rows, tokens.tolist(), logps.tolist(), strict=True):
            row.ids.append(token)
            row.logprobs.append(logp)
            if token in self.eos_ids or self.stopped(row):
                row.finish = "stop"
            elif len(row.ids) >= row.max_new:
                row.finish = "length"
        # 2) drop finished rows from the batch, its cache and its leading padding
        finished = [r for r in self.rows if r.finish is not None]
        if finished and self.keep_kv:
            self._export_kv()
        if finished:
            keep = self._keep([r.finish is None for r in self.rows])
            tokens = tokens[keep]
        if not self.rows:
            return finished
        # 3) one forward step for the rest
        self.mask = torch.cat([self.mask, self.mask.new_ones((len(self.rows), 1))], dim=-1)
        self.last_pos = self.last_pos + 1
        out = self.model(
            input_ids=tokens.view(-1, 1),
            attention_mask=self.mask,
            position_ids=self.last_pos,
            use_cache=True,
            **{self.cache_kw: self.cache},
        )
        self.logits = out.logits[:, -1, :]
        return finished

    # --- internals -------------------------------------------------------------------------
    def _prefill(self, rows: list[DecodeRow]):
        width = max(len(r.prompt) for r in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            input_ids[i, width - len(r.prompt) :] = torch.tensor(r.prompt)
            mask[i, width - len(r.prompt) :] = 1
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (n, T): padding does not count
        cache = DynamicCache()
        out = self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,  # only the last position's logits are needed
            **{self.cache_kw: cache},
        )
        return cache, mask, positions[:, -1:], out.logits[:, -1, :]

    def _prefill_after(self, row: DecodeRow):
        """Pre-fill the prompt tokens after `row.past` over a cache holding it (one row)."""
        assert row.past is not None and 0 < row.past_len < len(row.prompt)
        cache = DynamicCache(ddp_cache_data=row.past)
        row.past = None  # the batch's cache holds it from here on
        suffix = torch.tensor([row.prompt[row.past_len :]], device=self.device)  # (1, s)
        mask = torch.ones((1, len(row.prompt)), dtype=torch.long, device=self.device)
        positions = torch.arange(row.past_len, len(row.prompt), device=self.device).unsqueeze(0)
        out = self.model(
            input_ids=suffix,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
            **{self.cache_kw: cache},
        )
        return cache, mask, positions[:, -1:], out.logits[:, -1, :]

    def _export_kv(self) -> None:
        """Copy each finished row's keys/values (its unpadded columns) out of the batch."""
        assert self.cache is not None
        for i, row in enumerate(self.rows):
            if row.finish is None:
                continue
            cols = self.mask[i].bool()  # a row's real tokens: its columns after the left padding
            row.kv = tuple(
                (layer.keys[i : i + 1, :, cols], layer.values[i : i + 1, :, cols])
                for layer in self.cache.layers
            )

    def _merge(self, cache: DynamicCache, mask: torch.Tensor) -> None:
        """Append a prefilled group to the batch, left-padding the shorter side's keys/values
        (masked out, so they change nothing) to a common length."""
        assert self.cache is not None
        width = max(self.mask.shape[1], mask.shape[1])
        self.mask = torch.cat([_left_pad(self.mask, width, -1), _left_pad(mask, width, -1)])
        for old, new in zip(self.cache.layers, cache.layers, strict=True):
            old.keys = torch.cat([_left_pad(old.keys, width, -2), _left_pad(new.keys, width, -2)])
            old.values = torch.cat(
                [_left_pad(old.values, width, -2), _left_pad(new.values, width, -2)]
            )

    def _keep(self, keep: list[bool]) -> torch.Tensor:
        """Keep the rows flagged True (in order); returns their batch indices."""
        assert self.cache is not None
        index = torch.tensor([j for j, k in enumerate(keep) if k], dtype=torch.long)
        index = index.to(self.device)
        self.rows = [r for r, k in zip(self.rows, keep, strict=True) if k]
        self.cache.batch_select_indices(index)
        self.mask, self.last_pos, self.logits = (
            self.mask[index],
            self.last_pos[index],
            self.logits[index],
        )
        # Columns that are padding for every remaining row are dead weight: cut them.
        first = int(self.mask.any(dim=0).int().argmax()) if self.rows else 0
        if first > 0 and self.can_merge:
            self.mask = self.mask[:, first:]
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[:, :, first:], layer.values[:, :, first:]
        return index


def _left_pad(t: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    """Zero-pad `t` at the front of dimension `dim` (-1 or -2) up to `width`."""
    missing = width - t.shape[dim]
    if missing == 0:
        return t
    return F.pad(t, (missing, 0) if dim == -1 else (0, 0, missing, 0))


def sample_next(logits: torch.Tensor, rows: list[DecodeRow]) -> tuple[torch.Tensor, torch.Tensor]:
    """Next token of each row (greedy at T = 0, else temperature + top-p) and its logprob.

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
