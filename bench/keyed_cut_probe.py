"""Which list layout lets a small model learn a keyed cut? Two LoRAs trained side by side.

    python bench/keyed_cut_probe.py [--steps 150] [--batch 8] [--eval 40] [--model default]

A lister asked for "elements with atomic numbers 32 to 41" or "states admitted 1812 to 1818"
reads a list that shows each item's number and thinks the two ends of the cut before it copies
the names between them (world/oracle/members.py). The end's *name* is what the model must find
from a *number* the question gives. This trains one LoRA (rank 32, every linear layer, as the
default recipe) per layout on the same synthetic cuts and scores greedy notes on new lists:

- name first, "- Germanium (32)" and "from Germanium (32) to Niobium (41).": the name comes
  before the number that picks it, so the model must choose it before it can see that number;
- number first, "- 32: Germanium" and "from 32: Germanium to 41: Niobium.": the number is
  copied from the question (or, between years, the first one on the list at or after it) and
  the name is what follows it on the page.

Lists are 8-16 names drawn from the world's country pages (so a name says nothing about its
number: the cut must be read in context), half numbered consecutively from a random start
(atomic numbers), half by increasing years with gaps where the asked bounds may fall between
two years (admissions). Reported: the mean loss of the last 25 steps, the share of held-out
notes right at both ends and at the first end, and the seconds each layout took. Measured
once on 2 CPU cores (150 steps of 8, 40 held-out lists, the same cuts for both): number first
0.725 both ends, 0.825 the first, loss ~0.07; name first 0.625 and 0.650, loss ~0.22; ~21 min a
layout. Untrained, the base model named the item of a given number on ~15% of such lists after
three solved examples in its prompt.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

import torch
from peft import LoraConfig, get_peft_model
from rich.console import Console
from rich.table import Table

from wideseek.llm.model_loading import load_causal_lm, load_tokenizer
from wideseek.tools.local_corpus import read_corpus
from wideseek.world.store import load_world

Layout = tuple[Callable[[str, int], str], Callable[[str, int], str]]  # page line, note end
LAYOUTS: dict[str, Layout] = {
    "name first": (lambda n, k: f"- {n} ({k})", lambda n, k: f"{n} ({k})"),
    "number first": (lambda n, k: f"- {k}: {n}", lambda n, k: f"{k}: {n}"),
}


def cut_example(rng: random.Random, names: list[str], layout: Layout) -> tuple[str, str]:
    """A list and the question's bounds (the prompt), and the note naming the cut's ends."""
    n = rng.randint(8, 16)
    picked = rng.sample(names, n)
    lo_i = rng.randrange(n)
    hi_i = rng.randrange(lo_i, n)
    if rng.random() < 0.5:  # consecutive numbers: the bounds are numbers on the list
        start = rng.randint(1, 100)
        keys = list(range(start, start + n))
        lo, hi = keys[lo_i], keys[hi_i]
    else:  # years with gaps: a bound may fall between two years on the list
        first = rng.randint(1700, 1900)
        keys = sorted(rng.sample(range(first, first + 150), n))
        lo = rng.randint(keys[lo_i - 1] + 1, keys[lo_i]) if lo_i else keys[0] - rng.randint(0, 3)
        if hi_i < n - 1:
            hi = rng.randint(keys[hi_i], keys[hi_i + 1] - 1)
        else:
            hi = keys[-1] + rng.randint(0, 3)
    line, end = layout
    page = "\n".join(line(name, key) for name, key in zip(picked, keys, strict=True))
    prompt = f"List\n{page}\n\nFrom {lo} to {hi}:"
    note = f" from {end(picked[lo_i], keys[lo_i])} to {end(picked[hi_i], keys[hi_i])}."
    return prompt, note


def train_and_score(args: argparse.Namespace, names: list[str], layout: Layout) -> dict:
    torch.manual_seed(args.seed)
    tokenizer = load_tokenizer(args.model)
    model = load_causal_lm(args.model, dtype=torch.float32)
    lora = LoraConfig(r=32, lora_alpha=64, target_modules="all-linear", task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=args.lr)
    rng, losses, began = random.Random(args.seed), [], time.perf_counter()
    pad = tokenizer.pad_token_id or 0
    for _ in range(args.steps):
        batch = [cut_example(rng, names, layout) for _ in range(args.batch)]
        rows = [(tokenizer(p).input_ids, tokenizer(p + t).input_ids) for p, t in batch]
        width = max(len(full) for _, full in rows)
        ids = torch.full((len(rows), width), pad)
        labels = torch.full((len(rows), width), -100)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (prompt, full) in enumerate(rows):
            ids[i, : len(full)] = torch.tensor(full)
            labels[i, len(prompt) : len(full)] = torch.tensor(full[len(prompt) :])
            mask[i, : len(full)] = 1
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    model.eval()
    held_out = random.Random(args.seed + 999)  # other lists, other bounds
    both = first = 0
    for _ in range(args.eval):
        prompt, note = cut_example(held_out, names, layout)
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=24, do_sample=False)
        text = tokenizer.decode(out[0, ids.shape[1] :])
        said = text[: text.find(".") + 1] if "." in text else text
        both += said.strip() == note.strip()
        first += said.strip().split(" to ")[0] == note.strip().split(" to ")[0]
    return {
        "loss": sum(losses[-25:]) / len(losses[-25:]),
        "both": both / args.eval,
        "first": first / args.eval,
        "seconds": time.perf_counter() - began,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="default", help="base model (default: SmolLM2-135M)")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--eval", type=int, default=40, help="held-out lists scored")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    pages, _ = read_corpus(load_world().corpus_path)
    names = sorted({p.title for p in pages if "/country/" in p.url and p.url.count("/") == 4})
    table = Table(title=f"keyed cut, {args.steps} steps of {args.batch}, {args.eval} held out")
    for column in ("layout", "loss (last 25)", "both ends", "first end", "seconds"):
        table.add_column(column, justify="left" if column == "layout" else "right")
    for name, layout in LAYOUTS.items():
        r = train_and_score(args, names, layout)
        table.add_row(
            name, f"{r['loss']:.3f}", f"{r['both']:.3f}", f"{r['first']:.3f}", f"{r['seconds']:.0f}"
        )
    Console().print(table)


if __name__ == "__main__":
    main()
