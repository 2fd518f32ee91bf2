"""Keys/values of token sequences the engine has already run, so a new prompt pre-fills only
what it does not share with one of them.

Two kinds of sharing make agents' prompts cheap: an agent's next turn extends its last one (the
tool results and a new generation prompt are appended), and the subagents one lead call starts
share their long system prompt and tool schemas (measured on a wide task: 446 of ~480 tokens
of each of 10 first prompts) and differ only in their subtask.

Contract: `put(tokens, kv)` stores the per-layer keys/values of `tokens` (a finished row's
prompt plus what it generated but its last sampled token, which never went through the model;
or a freshly pre-filled prompt); an entry that is a prefix of the new one goes (the new one
serves every lookup it served). `lookup(prompt)` returns `(kv, n)`: the keys/values of the
first n tokens of `prompt`, from the entry sharing the longest prefix with it, n >= MIN_REUSE
and n < len(prompt) (the last prompt token must go through the model for its logits); or None.
Entries stay after a lookup (the caller copies the keys/values into its own buffers) and are
evicted oldest-used first beyond `max_tokens`. `clear()` after the weights change.

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
        # key: the tokens as a tuple; value: (the tokens as a tensor, for fast comparison; kv)
        self._entries: OrderedDict[tuple[int, ...], tuple[torch.Tensor, tuple[LayerKV, ...]]]
        self._entries = OrderedDict()
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
        ids = torch.tensor(key, dtype=torch.int64)
        for old, (old_ids, _) in list(self._entries.items()):
            if len(old) <= len(key) and shared_prefix(old_ids, ids) == len(old):
                self._drop(old)  # subsumed: the new entry serves every lookup it served
        self._entries[key] = (ids, kv)
        self._tokens += len(key)
        while self._tokens > self.max_tokens:
            self._drop(next(iter(self._entries)))

    def lookup(self, prompt: Sequence[int]) -> tuple[tuple[LayerKV, ...], int] | None:
        if not self._entries:
            return None
        ids = torch.tensor(list(prompt), dtype=torch.int64)
        best, best_n = None, 0
        for key, (key_ids, _) in self._entries.items():
            n = shared_prefix(key_ids, ids)
            if n > best_n:
                best, best_n = key, n
        best_n = min(best_n, len(prompt) - 1)
        if best is None or best_n < MIN_REUSE:
            return None
        self._entries.move_to_end(best)  # recently used: evicted last
        kv = self._entries[best][1]
        self.hits += 1
        self.reused_tokens += best_n
        return tuple((k[:, :, :best_n], v[:, :, :best_n]) for k, v in kv), best_n

    def clear(self) -> None:
        self._entries.clear()
        self._tokens = 0

    def _drop(self, key: tuple[int, ...]) -> None:
        self._tokens -= len(key)
        del self._entries[key]


def shared_prefix(a: torch.Tensor | Sequence[int], b: torch.Tensor | Sequence[int]) -> int:
    """How many leading tokens `a` and `b` have in common."""
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    n = min(len(a), len(b))
    differ = torch.nonzero(a[:n] != b[:n])
    return int(differ[0]) if len(differ) else n
