"""What an SFT run will train on, before it trains: `wideseek train sft --plan`.

Contract: `plan_sft(config, examples, processes, selections) -> SFTPlan`: the examples by
role (how many, their tokens, the labelled ones among them), and by the run file's selection
when it has several, and the schedule train_sft will follow with
`processes` data-parallel processes: micro-batches an epoch, optimizer steps, and the tokens
the run reads (padding excluded: the `tokens` a metrics row counts), walked micro-batch by
micro-batch as the trainer walks them. The examples are the ones the run would get (role
limits applied, longer than `max_length` left out), so sizing a recipe (epochs, role limits,
batch) costs a tokenisation that the run then finds cached. It knows examples and the
schedule, not models.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from wideseek.train.sft import MicroBatches, SFTConfig, optimizer_steps
from wideseek.train.sft_data import SFTExample


@dataclass(frozen=True)
class RoleFigures:
    examples: int
    tokens: int
    labelled: int  # the tokens with a loss: what the model learns to write


@dataclass(frozen=True)
class SFTPlan:
    roles: dict[str, RoleFigures]  # in order of first appearance
    batches_per_epoch: int
    steps: int
    tokens: int  # read over the whole run, padding excluded
    epochs: float
    processes: int
    # a run file's selections (SFTRun.also), each one's examples by its label; empty for one
    selections: dict[str, RoleFigures] = field(default_factory=dict)

    @property
    def total(self) -> RoleFigures:
        figures = self.roles.values()
        return RoleFigures(
            examples=sum(f.examples for f in figures),
            tokens=sum(f.tokens for f in figures),
            labelled=sum(f.labelled for f in figures),
        )


def figures_of(examples: Sequence[SFTExample]) -> RoleFigures:
    return RoleFigures(
        examples=len(examples),
        tokens=sum(len(e.input_ids) for e in examples),
        labelled=sum(e.n_target_tokens for e in examples),
    )


def plan_sft(
    config: SFTConfig,
    examples: Sequence[SFTExample],
    processes: int = 1,
    selections: Sequence[tuple[str, Sequence[SFTExample]]] = (),
) -> SFTPlan:
    """The plan of training on `examples`; `selections` (label, examples) are the parts the
    examples were selected in, counted apart."""

    def fit(group: Sequence[SFTExample]) -> list[SFTExample]:
        return [e for e in group if len(e.input_ids) <= config.max_length]

    examples = fit(examples)
    if not examples:
        raise ValueError("no training examples (check the trajectories and max_length)")
    by_role: dict[str, list[SFTExample]] = {}
    for e in examples:
        by_role.setdefault(e.role, []).append(e)
    roles = {r: figures_of(group) for r, group in by_role.items()}
    batches = MicroBatches(examples, config)  # the ones train_sft takes, in its order
    steps = optimizer_steps(batches.per_epoch, config, processes)
    taken = range(steps * config.grad_accum * processes)
    read = sum(len(examples[i].input_ids) for g in taken for i in batches[g])
    parts = {label: figures_of(fit(group)) for label, group in selections}
    return SFTPlan(roles, batches.per_epoch, steps, read, config.epochs, processes, parts)
