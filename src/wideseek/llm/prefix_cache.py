"""The KV caches of finished generations, kept so that an agent's next turn pre-fills only the
tokens appended since (the tool results and the new generation prompt).

Contract: `put(tokens, kv)` stores the per-layer keys/values of `tokens` (a finished row's
prompt plus what it generated, but its last sampled token, which never went through the
model); `take(prompt)` removes and returns the longest stored entry that is a proper prefix of
`prompt`, as `(kv, length)`, or None. An agent's context only grows by appended ids, so its
previous turn's entry is a prefix of its next prompt; an entry is taken once (the continuing
agent stores a longer one when it finishes), so one live agent holds one entry. The total of
stored tokens is capped: the oldest entries go first. `clear()` after the weights change.

It knows token ids and tensors; not models, batching or threads (the engine calls it from its
one decode thread).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch

LayerKV = tuple[torch.Tensor, torch.Tensor]  # keys, values: (1, kv_heads, T, head_dim)
# Below this many reusable tokens a lookup is not worth the separate pre-fill it costs.
MIN_REUSE = 32


class PrefixCache:
    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max_tokens
        self._entries: OrderedDict[tuple[int, ...], tuple[LayerKV, ...]] = OrderedDict()
        self._tokens = 0
        self.hits = 0
        self.reused_tokens = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def tokens(self) -> int:
        return self._tokens

    def put(self, tokens: Sequence[int], kv: tuple[LayerKV, ...]) -> None:
        key = tuple(tokens)
        if len(key) < MIN_REUSE or len(key) > self.max_tokens:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = kv
        self._tokens += len(key)
        while self._tokens > self.max_tokens:
            self._drop(next(iter(self._entries)))

    def take(self, prompt: Sequence[int]) -> tuple[tuple[LayerKV, ...], int] | None:
        best: tuple[int, ...] | None = None
        for key in self._entries:
            n = len(key)
            if n < len(prompt) and (best is None or n > len(best)) and tuple(prompt[:n]) == key:
                best = key
        if best is None:
            return None
        kv = self._drop(best)
        self.hits += 1
        self.reused_tokens += len(best)
        return kv, len(best)

    def clear(self) -> None:
        self._entries.clear()
        self._tokens = 0

    def _drop(self, key: tuple[int, ...]) -> tuple[LayerKV, ...]:
        self._tokens -= len(key)
        return self._entries.pop(key)
