"""The slot cache: in-place writes per row, growth that keeps what is stored, moves between rows."""

import torch

from wideseek.llm.slot_cache import SlotCache


def cache(layers: int = 2) -> SlotCache:
    return SlotCache(
        layers, kv_heads=2, head_dim=3, dtype=torch.float32, device=torch.device("cpu")
    )


def states(b: int, q: int, fill: float) -> torch.Tensor:
    return torch.full((b, 2, q, 3), fill)


def test_prefill_chunk_then_decode_steps_write_each_row_at_its_own_column():
    c = cache()
    c.reserve(2, 4)
    for row, length in ((0, 3), (1, 1)):  # rows of different lengths, pre-filled one by one
        c.plan(row, torch.arange(length).unsqueeze(0))
        keys, _ = c.update(states(1, length, row + 1.0), states(1, length, -1.0), 0)
        assert keys.shape == (1, 2, length, 3)
    # one decode step: row 0 writes column 3, row 1 column 1 (growing past the capacity of 4)
    c.reserve(2, 5)
    c.plan(0, torch.tensor([[3], [1]]))
    keys, values = c.update(
        torch.stack([states(1, 1, 7.0)[0], states(1, 1, 8.0)[0]]), states(2, 1, 0.5), 1
    )
    assert keys.shape == (2, 2, 4, 3)  # views up to the longest row's new column
    assert c.capacity >= 5 and c.get_seq_length() == 4
    assert keys[0, 0, 3, 0] == 7.0 and keys[1, 0, 1, 0] == 8.0
    assert c.keys[0][0, 0, :3, 0].tolist() == [1.0, 1.0, 1.0]  # growth kept layer 0's rows
    assert c.keys[0][1, 0, 0, 0] == 2.0
    assert torch.equal(values[1, :, 1], torch.full((2, 3), 0.5))


def test_read_write_and_move_copy_a_row_between_slots():
    c = cache()
    c.reserve(3, 4)
    c.plan(2, torch.arange(4).unsqueeze(0))
    for layer in range(2):
        c.update(states(1, 4, 10.0 + layer), states(1, 4, 20.0 + layer), layer)
    kv = c.read(2, 3)
    assert [k.shape for k, _ in kv] == [(1, 2, 3, 3)] * 2
    c.write(0, kv)
    c.move(2, 1, 4)
    for layer in range(2):
        assert torch.all(c.keys[layer][0, :, :3] == 10.0 + layer)
        assert torch.all(c.keys[layer][0, :, 3] == 0.0)  # only the first 3 columns were read
        assert torch.all(c.values[layer][1] == 20.0 + layer)
    kv[0][0].fill_(-1)  # a read is a copy, not a view
    assert torch.all(c.keys[0][2] == 10.0)


def test_release_frees_and_regrows_zeroed():
    c = cache()
    c.reserve(1, 2)
    c.plan(0, torch.arange(2).unsqueeze(0))
    c.update(states(1, 2, torch.nan), states(1, 2, torch.nan), 0)
    c.release()
    assert c.slots == 0
    c.reserve(1, 2)
    assert not torch.isnan(c.keys[0]).any()  # masked columns must never hold NaN


def test_growing_columns_with_fewer_rows_running_keeps_every_slot():
    # an evaluation crashed 12 of 20 wide tasks with "expanded size 27 vs existing 32": a batch
    # that had held 32 rows, down to 11, needed more columns, and growth shrank the rows to 27
    c = cache()
    c.reserve(32, 4)
    c.plan(31, torch.arange(4).unsqueeze(0))
    c.update(states(1, 4, 5.0), states(1, 4, 6.0), 0)
    c.reserve(11, 9)
    assert c.slots == 32 and c.capacity >= 9
    assert torch.all(c.keys[0][31, :, :4] == 5.0)  # the slot past the running rows is kept
