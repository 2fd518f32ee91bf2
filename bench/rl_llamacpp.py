"""What RL rollouts on llama.cpp cost per policy version, and how far its logprobs are from the
learner's (`rollout_engine.kind: llama.cpp`, train/rl/llamacpp_sampler.py).

    python bench/rl_llamacpp.py [--model src/wideseek/assets/model] [--weights q8_0 f16 f32]
                                [--samples 8] [--tokens 48]

The policy is loaded as `wideseek train rl` loads it (a peft model, fp32 here), its adapter
nudged as an update would (every LoRA B + 0.002 N(0, 1): a new version). For each weights
type: the seconds `LlamaCppSampler.engine` takes for a new version (merge, GGUF write, load:
paid once a step), the file's size, and over `--samples` completions sampled at temperature 1
from an agent's first prompt, the gap between llama.cpp's recorded logprob of each token and
the learner's (the update's old and new logprobs before any step): mean |Δ|, mean Δ, and the
k3 KL per token, the figure a step's `approx_kl` shows at ratio 1. The torch engine's own gap
(the merged copy against the peft model, `bench/rl_sampler.py`) is the floor. The decoding
speed of llama.cpp against torch on agents is `bench/local_engine.py`'s. Run it alone.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import torch

from wideseek.llm.engine import GenerateRequest, SamplingParams
from wideseek.train.rl.llamacpp_sampler import LlamaCppSampler
from wideseek.train.rl.logprobs import sequence_logprobs
from wideseek.train.trainable import load_trainable
from wideseek.types import Message

PROMPT = [
    Message(role="system", content="You are a research agent with a search tool."),
    Message(role="user", content="List the 7 most populous cities of Morocco with populations."),
]


def nudge(policy: torch.nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, weight in policy.named_parameters():
            if "lora_B" in name:
                weight.add_(torch.randn(weight.shape, generator=generator) * 0.002)


async def gaps(sampler: LlamaCppSampler, policy, version: str, samples: int, tokens: int):
    engine = sampler.engine(version)
    prompt = engine.renderer.render_prompt(PROMPT, None)
    out = []
    for seed in range(samples):
        sampling = SamplingParams(temperature=1.0, max_tokens=tokens, seed=seed)
        done = await engine.generate(GenerateRequest(prompt_token_ids=prompt, sampling=sampling))
        ids = torch.tensor([prompt + done.token_ids])
        with torch.no_grad():
            learner, _ = sequence_logprobs(policy, ids, 1.0)
        out.append(torch.tensor(done.logprobs) - learner[0, len(prompt) - 1 :])
    return torch.cat(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="src/wideseek/assets/model", help="a LoRA adapter dir")
    ap.add_argument("--weights", nargs="+", default=["q8_0", "f16", "f32"])
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=48)
    args = ap.parse_args()

    trainable = load_trainable(args.model, dtype="fp32")
    policy = trainable.model.eval()
    print(f"{'weights':>7} {'new version s':>14} {'file MB':>8} {'mean |dlogp|':>13} "
          f"{'mean dlogp':>11} {'k3 KL/token':>12}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for i, weights in enumerate(args.weights):
            sampler = LlamaCppSampler(policy, trainable.resolved, trainable.tokenizer, Path(tmp),
                                      weights=weights, slots=4)  # fmt: skip
            sampler.engine(f"{weights}-start")  # the first version: not what a step pays
            nudge(policy, i)
            started = time.perf_counter()
            sampler.engine(f"{weights}-next")
            seconds = time.perf_counter() - started
            size = sampler.path.stat().st_size / 1e6
            d = asyncio.run(gaps(sampler, policy, f"{weights}-next", args.samples, args.tokens))
            k3 = float((torch.exp(-d) - 1 + d).mean())
            print(f"{weights:>7} {seconds:>14.1f} {size:>8.0f} {float(d.abs().mean()):>13.4f} "
                  f"{float(d.mean()):>11.4f} {k3:>12.5f}")  # fmt: skip
            sampler.close()


if __name__ == "__main__":
    main()
