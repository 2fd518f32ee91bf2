"""Training tokens/s of the default base under each way to train it, measured side by side.

    python bench/lora_speed.py [--tokens 1024] [--steps 3] [--labelled 0.16]

For each setting (full fine-tuning in fp32, LoRA over an fp32 base, LoRA over a bf16 base,
LoRA on the top 10 layers only, the default recipe with the loss projected onto the vocabulary
everywhere or only where a label is), the model is loaded through
`train.trainable.load_trainable` (what `wideseek train sft` uses) and timed over `--steps`
forward + backward + AdamW steps on one sequence of `--tokens` tokens whose first
(1 - `--labelled`) share is prompt (no label), after one warm-up step. 0.16 is the default
recipe's share: 1.92M of its examples' 11.7M tokens are the model's own. Run it alone: a second
busy process on a 2-core machine cuts every figure several times; tokens per CPU-second (this
process's user + system time) suffer less from it than tokens per second and are printed beside.
"""

from __future__ import annotations

import argparse
import time

import torch

from wideseek.train.sft_data import IGNORE
from wideseek.train.token_loss import labelled_loss
from wideseek.train.trainable import LoraSettings, load_trainable

# name: (adapter, base dtype, loss projected only at labelled positions)
SETTINGS = {
    "full fp32": (None, "fp32", False),
    "lora r16 fp32 base": (LoraSettings(), "fp32", False),
    "lora r16 auto base": (LoraSettings(), "auto", False),
    "lora r16 auto base, top 10 layers": (LoraSettings(top_layers=10), "auto", False),
    # configs/sft-default.yaml's adapter
    "lora r32 auto base (default recipe)": (LoraSettings(r=32, alpha=64), "auto", False),
    "default recipe, labelled-only loss": (LoraSettings(r=32, alpha=64), "auto", True),
}


def tokens_per_s(
    lora: LoraSettings | None, dtype: str, labelled_only: bool, args: argparse.Namespace
) -> tuple:
    t = load_trainable("default", lora=lora, dtype=dtype)
    model = t.model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    tokens, steps = args.tokens, args.steps
    ids = torch.randint(0, t.tokenizer.vocab_size, (1, tokens))
    labels = ids.clone()
    labels[:, : round(tokens * (1 - args.labelled))] = IGNORE  # the prompt part
    batch = {"input_ids": ids, "labels": labels, "attention_mask": torch.ones_like(ids)}

    def step() -> None:
        loss = labelled_loss(model, batch) if labelled_only else model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    step()  # warm-up: allocations, kernels
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    return (
        tokens * steps / seconds,
        tokens * steps / cpu_seconds,
        t.trainable_parameters(),
        t.dtype_reason,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--labelled", type=float, default=0.16, help="labelled share of tokens")
    parser.add_argument("--only", nargs="+", choices=list(SETTINGS), help="these settings only")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, 1 x {args.tokens} tok")
    baseline = None
    for name, (lora, dtype, labelled_only) in SETTINGS.items():
        if args.only and name not in args.only:
            continue
        speed, per_cpu_s, trained, reason = tokens_per_s(lora, dtype, labelled_only, args)
        baseline = baseline or (speed, per_cpu_s)
        print(
            f"{name:36s} {speed:7.0f} tok/s  {speed / baseline[0]:5.2f}x  "
            f"{per_cpu_s:7.0f} tok/CPU-s  {per_cpu_s / baseline[1]:5.2f}x  "
            f"{trained:>11,} trained  ({reason})"
        )


if __name__ == "__main__":
    main()
