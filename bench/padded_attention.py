"""A padded SFT micro-batch with and without its attention mask: seconds, measured side by side.

    python bench/padded_attention.py [--rows 2] [--tokens 2048] [--pad 300] [--repeats 3]

`train.token_loss.labelled_loss` drops the attention mask of a right-padded batch (a causal
LM's labelled logits do not depend on it). This times one forward + backward of the default
recipe's model (the default base in its training dtype with a fresh r=32 LoRA adapter, through
`train.trainable.load_trainable`) on `--rows` rows of `--tokens` tokens, the first row ending in
`--pad` padding tokens, the last 16% of each row's real tokens labelled (the recipe's share):
once with the mask passed to the model, as before, and once through `labelled_loss`,
alternating, after one warm-up of each. It prints each arm's median seconds and tokens/s, their
ratio, and the two losses. Run it alone: on 2 cores a second busy process cuts every figure
several times.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from wideseek.train.sft_data import IGNORE
from wideseek.train.token_loss import labelled_loss
from wideseek.train.trainable import LoraSettings, load_trainable


def masked_loss(model, batch: dict) -> torch.Tensor:
    """labelled_loss as it was: the same call, with the batch's mask passed to the model."""

    def forward(**inputs):
        return model(**{**inputs, "attention_mask": batch["attention_mask"]})

    return labelled_loss(forward, batch)


def make_batch(rows: int, tokens: int, pad: int, vocab: int, pad_id: int) -> dict:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(100, vocab, (rows, tokens), generator=gen)
    labels = torch.full_like(ids, IGNORE)  # the prompt and tool results, and the padding
    mask = torch.ones_like(ids)
    for row in range(rows):
        real = tokens - (pad if row == 0 else 0)
        labelled = slice(round(real * 0.84), real)  # the row's own last 16%
        labels[row, labelled] = ids[row, labelled]
    if pad:
        ids[0, -pad:], mask[0, -pad:] = pad_id, 0
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def timed(step, model, batch: dict) -> tuple[float, float]:
    start = time.perf_counter()
    loss = step(model, batch)
    loss.backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - start, float(loss.detach())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--pad", type=int, default=300, help="padding at the end of row 0")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    t = load_trainable("default", lora=LoraSettings(r=32, alpha=64), dtype="auto")
    model = t.model.train()
    batch = make_batch(args.rows, args.tokens, args.pad, len(t.tokenizer), t.tokenizer.pad_token_id)
    arms = {"mask passed (before)": masked_loss, "labelled_loss (causal, no mask)": labelled_loss}
    seconds: dict[str, list[float]] = {name: [] for name in arms}
    losses: dict[str, float] = {}
    for step in arms.values():  # warm-up
        timed(step, model, batch)
    for _ in range(args.repeats):
        for name, step in arms.items():
            dt, losses[name] = timed(step, model, batch)
            seconds[name].append(dt)
    real = int(batch["attention_mask"].sum())
    print(
        f"{args.rows} x {args.tokens} tokens, {args.pad} of them padding; dtype {t.dtype}, "
        f"{torch.get_num_threads()} threads"
    )
    for name in arms:
        median = statistics.median(seconds[name])
        print(f"  {name:34s} {median:7.2f} s  {real / median:6.0f} tok/s  loss {losses[name]:.6f}")
    before, after = (statistics.median(seconds[name]) for name in arms)
    print(f"  speed-up: {before / after:.2f}x")


if __name__ == "__main__":
    main()
