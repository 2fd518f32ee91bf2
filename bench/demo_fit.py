"""Do the demonstrations fit the response cap? Turn lengths in the model's own tokens.

    python bench/demo_fit.py runs/oracle-wide-train-multi/trajectories.jsonl \
        runs/oracle-deep-train-multi/trajectories.jsonl [--model default] [--cap 256]

SFT teaches every turn of the oracle's demonstrations whole, while evaluation (and the shipped
model's recommended limits) cut every response at `--cap` tokens: a turn longer than that is
one the model was taught but can never finish under the cap (a delegation cut mid-call is a
malformed call; a table cut mid-way loses its last rows). This counts such turns with the
model's tokenizer, by task kind, language, role and what the turn does (a tool call, or the
agent's final answer), and prints their share and the longest turn of each group. It reads
files and tokenises text only: seconds, and any machine load leaves its figures unchanged.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from wideseek.llm.model_loading import load_tokenizer
from wideseek.types import iter_trajectories

Group = tuple[str, str, str, str]  # task kind, language, role, turn kind


def turn_lengths(paths: list[Path], tokenizer) -> dict[Group, list[int]]:
    """Every assistant turn's length in tokens, grouped."""
    lengths: dict[Group, list[int]] = defaultdict(list)
    for path in paths:
        for trajectory in iter_trajectories(path):
            task = trajectory.task
            for agent in trajectory.agents:
                for turn in agent.turns:
                    doing = "tool call" if turn.tool_calls else "answer"
                    tokens = tokenizer(turn.response_text, add_special_tokens=False)["input_ids"]
                    lengths[(task.kind, task.language, agent.role, doing)].append(len(tokens))
    return lengths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trajectories", nargs="+", type=Path)
    parser.add_argument("--model", default="default", help="whose tokenizer counts the tokens")
    parser.add_argument("--cap", type=int, default=256, help="tokens a response may have")
    args = parser.parse_args()
    lengths = turn_lengths(args.trajectories, load_tokenizer(args.model))
    table = Table(title=f"demonstration turns longer than {args.cap} tokens")
    for column in ("task", "lang", "role", "turn", "turns", f"> {args.cap}", "share", "max"):
        table.add_column(column, justify="left" if column in ("task", "lang", "role") else "right")
    over_all = total = 0
    for group, values in sorted(lengths.items()):
        over = sum(n > args.cap for n in values)
        over_all, total = over_all + over, total + len(values)
        table.add_row(*group, str(len(values)), str(over), f"{over / len(values):.1%}",
                      str(max(values)))  # fmt: skip
    Console(width=120).print(table)
    print(f"all turns: {over_all} of {total} longer than {args.cap} tokens")


if __name__ == "__main__":
    main()
