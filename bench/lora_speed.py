"""Training tokens/s of the default base under each way to train it, measured side by side.

    python bench/lora_speed.py [--tokens 1024] [--steps 3]

For each setting (full fine-tuning in fp32, LoRA over an fp32 base, LoRA over a bf16 base,
LoRA on the top 10 layers only), the model is loaded through `train.trainable.load_trainable`
(what `wideseek train sft` uses) and timed over `--steps` forward + backward + AdamW steps on
one sequence of `--tokens` tokens, after one warm-up step. Run it alone: a second busy process
on a 2-core machine cuts every figure several times.
"""

from __future__ import annotations

import argparse
import time

import torch

from wideseek.train.trainable import LoraSettings, load_trainable

SETTINGS = {
    "full fp32": (None, "fp32"),
    "lora r16 fp32 base": (LoraSettings(), "fp32"),
    "lora r16 auto base": (LoraSettings(), "auto"),
    "lora r16 auto base, top 10 layers": (LoraSettings(top_layers=10), "auto"),
    # configs/sft-default.yaml's adapter
    "lora r32 auto base (default recipe)": (LoraSettings(r=32, alpha=64), "auto"),
}


def tokens_per_s(lora: LoraSettings | None, dtype: str, tokens: int, steps: int) -> tuple:
    t = load_trainable("default", lora=lora, dtype=dtype)
    model = t.model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    ids = torch.randint(0, t.tokenizer.vocab_size, (1, tokens))

    def step() -> None:
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    step()  # warm-up: allocations, kernels
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - start
    return tokens * steps / seconds, t.trainable_parameters(), t.dtype_reason


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--only", nargs="+", choices=list(SETTINGS), help="these settings only")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, 1 x {args.tokens} tok")
    baseline = None
    for name, (lora, dtype) in SETTINGS.items():
        if args.only and name not in args.only:
            continue
        speed, trained, reason = tokens_per_s(lora, dtype, args.tokens, args.steps)
        baseline = baseline or speed
        print(
            f"{name:36s} {speed:7.0f} tok/s  {speed / baseline:5.2f}x  "
            f"{trained:>11,} trained  ({reason})"
        )


if __name__ == "__main__":
    main()
