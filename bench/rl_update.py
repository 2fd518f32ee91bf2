"""An RL update's cost per agent sample: logits everywhere vs only where a token is trained.

    python bench/rl_update.py [--tokens 3072] [--trained 0.16] [--reps 3] [--model default]

One agent sample of `--tokens` tokens whose last `--trained` share is the model's own (the
rest prompt and tool results), through `train.rl.logprobs.sequence_logprobs` and a backward of
its masked, weighted logprobs (what `update.sample_loss` differentiates), on the model loaded
as `wideseek train rl` loads it (the default recipe's LoRA, r=32 on every linear layer, over a
bf16 base). "all positions" projects every position onto the vocabulary (the call without a
mask, as every update did before); "trained positions" only the masked ones. The two alternate
`--reps` times after one warm-up each, so a busy neighbour slows both alike; printed: seconds a
sample (min and median), and the fp32 logits each keeps.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from wideseek.train.rl.logprobs import sequence_logprobs
from wideseek.train.trainable import LoraSettings, load_trainable


def one_sample(model, ids: torch.Tensor, mask: torch.Tensor, project_all: bool) -> float:
    started = time.perf_counter()
    new, _ = sequence_logprobs(model, ids, 1.0, None if project_all else mask)
    (new * mask).sum().backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", type=int, default=3072)
    ap.add_argument("--trained", type=float, default=0.16, help="share of the model's own tokens")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--model", default="default", help="model spec (default: the default base)")
    args = ap.parse_args()
    torch.manual_seed(0)
    lora = LoraSettings(r=32, alpha=64)
    trainable = load_trainable(args.model, lora=lora, dtype="auto")
    model = trainable.model.train()
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, (1, args.tokens))
    mask = torch.zeros((1, args.tokens - 1), dtype=torch.bool)
    mask[:, -round(args.tokens * args.trained) :] = True
    variants = {"all positions": True, "trained positions": False}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for project_all in variants.values():  # warm-up
        one_sample(model, ids, mask, project_all)
    for _ in range(args.reps):
        for name, project_all in variants.items():
            times[name].append(one_sample(model, ids, mask, project_all))
    kept = {"all positions": args.tokens, "trained positions": int(mask.sum())}
    print(f"one sample of {args.tokens} tokens, {int(mask.sum())} trained, {args.reps} reps")
    for name, seconds in times.items():
        mb = kept[name] * vocab * 4 / 2**20
        print(f"  {name:18s} min {min(seconds):6.2f} s  median {statistics.median(seconds):6.2f} s"
              f"  logits {mb:7.0f} MB fp32")  # fmt: skip
    medians = {name: statistics.median(seconds) for name, seconds in times.items()}
    ratio = medians["all positions"] / medians["trained positions"]
    print(f"  speed-up (median): {ratio:.2f}x")


if __name__ == "__main__":
    main()
