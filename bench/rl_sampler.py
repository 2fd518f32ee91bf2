"""What the RL learner's local engine gains by sampling from a merged copy of the policy.

    python bench/rl_sampler.py [--model src/wideseek/assets/model] [--rows 1 4 16] [--reps 3]

The policy is loaded as `wideseek train rl` loads it (`train.trainable.load_trainable`: a peft
model whose adapter trains, the base in the engine's dtype), and `train.rl.merged_sampler`
makes the merged copy. For each row count, the mean milliseconds of one greedy decode step at
a 1,024-token context (`bench/local_engine.py`'s `decode_step_ms`, the engine's own
`BatchDecoder`) through the peft model and through the copy, alternated `--reps` times (the
figure is the median), and their ratio; first, how far the two models' logprobs of the same
tokens are apart (the rounding of merging, which the importance ratio sees). Run it alone: a
second busy process on a 2-core machine cuts every figure several times.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from local_engine import decode_step_ms
from wideseek.llm.local import LocalEngine
from wideseek.train.rl.logprobs import sequence_logprobs
from wideseek.train.rl.merged_sampler import MergedSampler
from wideseek.train.trainable import load_trainable


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="src/wideseek/assets/model", help="a LoRA adapter dir")
    ap.add_argument("--rows", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--context", type=int, default=1024)
    args = ap.parse_args()

    trainable = load_trainable(args.model, dtype="auto")
    policy = trainable.model.eval()
    sampler = MergedSampler(policy)
    sampler.sync(0)
    ids = torch.randint(100, trainable.tokenizer.vocab_size, (1, 256), generator=None)
    with torch.no_grad():
        a, _ = sequence_logprobs(policy, ids, 1.0)
        b, _ = sequence_logprobs(sampler.model, ids, 1.0)
    gap = (a - b).abs()
    print(f"{trainable.dtype_reason}; logprob gap peft vs merged over 255 tokens: "
          f"mean {float(gap.mean()):.4f}, max {float(gap.max()):.4f}")  # fmt: skip

    engines = {
        "peft": LocalEngine(trainable.resolved, loaded=(policy, trainable.tokenizer)),
        "merged": LocalEngine(trainable.resolved, loaded=(sampler.model, trainable.tokenizer)),
    }
    print(f"{'rows':>5} {'peft ms/step':>13} {'merged ms/step':>15} {'peft / merged':>14}")
    for rows in args.rows:
        times: dict[str, list[float]] = {name: [] for name in engines}
        for _ in range(args.reps):  # alternated: drift on a shared machine hits both
            for name, engine in engines.items():
                times[name].append(decode_step_ms(engine, args.context, rows))
        peft, merged = (statistics.median(times[n]) for n in engines)
        print(f"{rows:>5} {peft:>13.1f} {merged:>15.1f} {peft / merged:>13.2f}x")


if __name__ == "__main__":
    main()
