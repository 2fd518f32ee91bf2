"""Preallocated keys/values for a batch whose rows have different lengths: one slot per row.

Contract: a `SlotCache` holds, for every attention layer, one keys and one values buffer of
shape (slots, kv_heads, capacity, head_dim). Row i of the running batch lives in slot i, its
tokens in columns 0..length-1 (no padding: each row's positions count its own tokens). Before a
forward pass the decoder says where that pass writes (`plan`): rows `start..start+b`, at
columns `positions` (b, q), q tokens a row. The model's attention layers then call
`update(keys, values, layer_idx)`, which writes in place and returns views of the first
`kv_len` columns of those rows (the caller masks out each row's columns past its own length).

Why not transformers' caches: DynamicCache appends with `torch.cat`, copying a layer's whole
cache at every step (measured: 17 of 52 ms a step at batch 1, most of the step at batch 16),
and StaticCache writes every row at the same position, which a batch of rows of different
lengths that join and leave between steps does not have. The object is duck-typed to what a
causal LM's attention layers call (`update`, `get_seq_length`); the 4D attention mask the
decoder passes makes the models skip their own mask building, which would need a Cache.

Buffers grow by doubling (rows and columns) and are zero-filled, so masked columns hold finite
values (0 weight x NaN would still be NaN). This module knows tensors, not models or sampling.
"""

from __future__ import annotations

import torch

LayerKV = tuple[torch.Tensor, torch.Tensor]  # keys, values of one row: (1, kv_heads, T, head_dim)


class SlotCache:
    def __init__(
        self, layers: int, kv_heads: int, head_dim: int, dtype: torch.dtype, device: torch.device
    ) -> None:
        self.shape = (kv_heads, head_dim)
        self.dtype, self.device = dtype, device
        self.keys: list[torch.Tensor] = [self._zeros(0, 0) for _ in range(layers)]
        self.values: list[torch.Tensor] = [self._zeros(0, 0) for _ in range(layers)]
        self._rows = slice(0, 0)
        self._positions = torch.zeros((0, 1), dtype=torch.long)
        self._contiguous = False  # one row writing a run of columns (a pre-fill chunk)
        self._first = 0  # that run's first column
        self._kv_len = 0

    @classmethod
    def for_model(cls, model) -> SlotCache:
        config = model.config
        heads = config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        kv_heads = getattr(config, "num_key_value_heads", None) or heads
        dtype = next(model.parameters()).dtype
        return cls(config.num_hidden_layers, kv_heads, head_dim, dtype, model.device)

    @property
    def slots(self) -> int:
        return self.keys[0].shape[0]

    @property
    def capacity(self) -> int:
        return self.keys[0].shape[2]

    def reserve(self, rows: int, columns: int) -> None:
        """Make room for `rows` slots of `columns` tokens, keeping what is stored."""
        if rows <= self.slots and columns <= self.capacity:
            return
        # each dimension grows only when asked to: a batch down to fewer rows than it once
        # held still keeps every slot (growing columns must not shrink the rows)
        new_rows = max(rows, min(2 * self.slots, rows + 16)) if rows > self.slots else self.slots
        new_cols = max(columns, 2 * self.capacity) if columns > self.capacity else self.capacity
        for buffers in (self.keys, self.values):
            for i, old in enumerate(buffers):
                grown = self._zeros(new_rows, new_cols)
                grown[: old.shape[0], :, : old.shape[2]] = old
                buffers[i] = grown

    def release(self) -> None:
        """Give the memory back (the buffers regrow on the next `reserve`)."""
        self.keys = [self._zeros(0, 0) for _ in self.keys]
        self.values = [self._zeros(0, 0) for _ in self.values]

    # --- what the next forward pass writes ---------------------------------------------------
    def plan(self, start: int, positions: torch.Tensor) -> None:
        """The next pass covers rows start..start+b and writes their tokens at `positions`
        (b, q): for each row, the columns of its q tokens (a decode step: q = 1; a decode pass
        checking guesses: q > 1; a pre-fill chunk: one row, a run of columns)."""
        b, q = positions.shape
        self._rows = slice(start, start + b)
        self._positions = positions
        self._contiguous = b == 1 and q > 1  # one row, a run of columns: written as a slice
        if self._contiguous:
            self._first = int(positions[0, 0])
        self._kv_len = int(positions.max()) + 1
        self._row_index = torch.arange(b, device=self.device).unsqueeze(-1).expand(b, q)

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self._kv_len

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args, **kwargs
    ) -> LayerKV:
        keys = self.keys[layer_idx][self._rows]
        values = self.values[layer_idx][self._rows]
        if self._contiguous:
            end = self._first + key_states.shape[2]
            keys[:, :, self._first : end] = key_states
            values[:, :, self._first : end] = value_states
        else:  # each row its own columns; (b, q) index pairs select (b, q, heads, dim)
            cols = self._positions
            keys[self._row_index, :, cols] = key_states.transpose(1, 2)
            values[self._row_index, :, cols] = value_states.transpose(1, 2)
        return keys[:, :, : self._kv_len], values[:, :, : self._kv_len]

    # --- moving rows ---------------------------------------------------------------------------
    def read(self, row: int, length: int) -> tuple[LayerKV, ...]:
        """A copy of one row's first `length` columns, layer by layer."""
        return tuple(
            (k[row : row + 1, :, :length].clone(), v[row : row + 1, :, :length].clone())
            for k, v in zip(self.keys, self.values, strict=True)
        )

    def write(self, row: int, kv: tuple[LayerKV, ...]) -> None:
        """Store `kv` (as `read` returns it) in the row's first columns."""
        for k, v, (new_k, new_v) in zip(self.keys, self.values, kv, strict=True):
            length = new_k.shape[2]
            k[row, :, :length] = new_k[0]
            v[row, :, :length] = new_v[0]

    def move(self, src: int, dst: int, length: int) -> None:
        """Copy row `src`'s first `length` columns into row `dst` (closing a gap)."""
        for k, v in zip(self.keys, self.values, strict=True):
            k[dst, :, :length] = k[src, :, :length]
            v[dst, :, :length] = v[src, :, :length]

    def _zeros(self, rows: int, columns: int) -> torch.Tensor:
        return torch.zeros(
            (rows, self.shape[0], columns, self.shape[1]), dtype=self.dtype, device=self.device
        )
