"""What storing an adapter in bf16 changes: one model with its adapter as trained (fp32) and
cast to bf16 (what `wideseek train ship --weights-dtype bfloat16` writes), side by side.

    python bench/adapter_dtype.py MODEL_DIR TRAJECTORIES [--examples 8] [--dtypes bf16 fp32]

For each base dtype (bf16: a CPU with bf16 units, the default engine's choice there; fp32: a
CPU without them), both adapters are merged into the base as the engine merges them, and the
model's own turns of the first `--examples` agent conversations of TRAJECTORIES are scored
teacher-forced (as SFT scores them). Printed per base dtype: the share of those positions where
the two models' next tokens (argmax) agree, and the largest and mean |difference| of the
demonstrated token's logprob; then the same two numbers for the base in bf16 vs fp32 with the
same fp32 adapter, the scale the cast's effect is to be read against.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import torch

from wideseek.llm.model_loading import load_causal_lm, load_tokenizer
from wideseek.train.sft_data import IGNORE, trajectory_examples
from wideseek.train.shipping import cast_weights
from wideseek.types import iter_trajectories

DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


def scored(model, examples) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per example: the argmax and the demonstrated token's logprob at each trained position."""
    out = []
    with torch.inference_mode():
        for example in examples:
            ids = torch.tensor([example.input_ids])
            labels = torch.tensor(example.labels[1:])
            keep = labels != IGNORE
            logits = model(ids).logits[0, :-1][keep].float()
            logprobs = logits.log_softmax(-1).gather(1, labels[keep, None])[:, 0]
            out.append((logits.argmax(-1), logprobs))
    return out


def compare(a, b) -> str:
    same = sum(int((x[0] == y[0]).sum()) for x, y in zip(a, b, strict=True))
    total = sum(len(x[0]) for x in a)
    diffs = torch.cat([(x[1] - y[1]).abs() for x, y in zip(a, b, strict=True)])
    return (
        f"argmax agree {same}/{total} ({same / total:.4%}), |dlogp| max {diffs.max():.2e} "
        f"mean {diffs.mean():.2e}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", type=Path, help="an adapter directory trained in fp32")
    ap.add_argument("trajectories", type=Path, help="trajectories.jsonl (e.g. an oracle run)")
    ap.add_argument("--examples", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=3072)
    ap.add_argument("--dtypes", nargs="+", choices=list(DTYPES), default=list(DTYPES))
    args = ap.parse_args()

    tokenizer = load_tokenizer(args.model)
    found = trajectory_examples(tokenizer, iter_trajectories(args.trajectories), args.max_length)
    examples = [e for _, e in zip(range(args.examples), found, strict=False)]
    positions = sum(e.n_target_tokens for e in examples)
    print(f"{len(examples)} agent conversations, {positions} trained positions")
    with tempfile.TemporaryDirectory() as tmp:
        cast = Path(tmp) / "bf16"
        shutil.copytree(args.model, cast)
        cast_weights(
            args.model / "adapter_model.safetensors", cast / "adapter_model.safetensors", "bfloat16"
        )
        results = {}
        for name in args.dtypes:
            dtype = DTYPES[name]
            as_trained = scored(load_causal_lm(args.model, dtype=dtype), examples)
            as_shipped = scored(load_causal_lm(cast, dtype=dtype), examples)
            results[name] = as_trained
            print(f"base {name}: adapter fp32 vs bf16: {compare(as_trained, as_shipped)}")
        if len(results) == 2:
            print(f"for scale, base bf16 vs fp32 (adapter fp32): {compare(*results.values())}")


if __name__ == "__main__":
    main()
