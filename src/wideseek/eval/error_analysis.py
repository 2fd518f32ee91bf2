"""Where a system fails on wide tasks, from its scored results: the report's error analysis.

A small model's wide answers fail in a few recognisable ways: it writes 3 rows of 25, it writes
no table the scorer can read, its agents hit limits. From ResultRows (the scorer records the
answer's and the gold's row counts), `wide_error_analysis` returns:

- item F1 and the answer's rows by the gold table's size (1–5, 6–10, 11–20, 21+ rows);
- answer rows against gold rows: how often the answer is shorter, as long, longer; the answer
  sizes seen most;
- why answers scored zero without being read (no table, columns that differ, ...);
- from the trajectories (`lister_analysis`): how many names the subagent the lead asked for the
  rows ("List the 9 most populous cities of ...") reported against the gold table's rows. A
  table cannot have more right rows than its list had names, and the default model's listers
  have been its first loss: 3 or 5 names whatever the list held, or whole page parts of 15.

Agent failure flags are the report's own section (`report.failure_totals`). Pure: rows and
trajectories in, figures out; `error_analysis_lines` and `lister_lines` render them as markdown
for report.md and model cards.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from statistics import mean

from wideseek.eval.runner import ResultRow
from wideseek.types import AgentRun, Trajectory

GOLD_ROW_BINS: tuple[tuple[int, int | None], ...] = ((1, 5), (6, 10), (11, 20), (21, None))


@dataclass(frozen=True)
class SizeBin:
    label: str
    answers: int  # those not read included (item F1 0), where the scorer knew the gold's rows
    item_f1: float
    answer_rows: float | None  # mean over the answers that were read (None: none was)
    gold_rows: float


@dataclass
class AgainstGold:
    """Sizes (a table's rows, a list's names) against the gold table's rows."""

    shorter: int = 0
    same: int = 0
    longer: int = 0
    sizes: Counter[int] = field(default_factory=Counter)

    def add(self, size: int, gold: int) -> None:
        self.sizes[size] += 1
        if size < gold:
            self.shorter += 1
        elif size == gold:
            self.same += 1
        else:
            self.longer += 1

    def text(self, unit: str) -> str:
        common = ", ".join(f"{n} {unit} ×{k}" for n, k in self.sizes.most_common(3))
        counts = f"fewer {self.shorter}, as many {self.same}, more {self.longer}"
        return f"{counts}; most frequent sizes: {common}"


@dataclass
class WideErrors(AgainstGold):
    answers: int = 0
    read: int = 0  # answers whose table the scorer read (row counts known)
    by_gold_rows: list[SizeBin] = field(default_factory=list)
    unread: Counter[str] = field(default_factory=Counter)  # why, for answers not read


def _reason(msg: str) -> str:
    """A zero-score message without its specifics: 'columns differ: [...]' → 'columns differ'."""
    return re.split(r"[:(\[]", msg, maxsplit=1)[0].strip() or "unknown"


def _bin_label(lo: int, hi: int | None) -> str:
    return f"{lo}+" if hi is None else f"{lo}-{hi}"


def wide_error_analysis(rows: Sequence[ResultRow]) -> WideErrors:
    """The error analysis of the wide rows among `rows` (see the module docstring)."""
    out = WideErrors()
    sized: list[tuple[int, int | None, float]] = []  # (gold rows, answer rows, item F1)
    for row in rows:
        s = row.scores
        if "item_f1" not in s:
            continue
        out.answers += 1
        answer, gold = s.get("answer_rows"), s.get("gold_rows")
        if gold is not None:  # an unread answer is in its bin with its 0 (scorers since 12/2026)
            sized.append((gold, answer, float(s["item_f1"])))
        if answer is None or gold is None:
            out.unread[_reason(str(s.get("msg") or row.error or "unknown"))] += 1
            continue
        out.read += 1
        out.add(answer, gold)
    for lo, hi in GOLD_ROW_BINS:
        members = [x for x in sized if x[0] >= lo and (hi is None or x[0] <= hi)]
        if members:
            read = [a for _, a, _ in members if a is not None]
            out.by_gold_rows.append(
                SizeBin(
                    _bin_label(lo, hi),
                    len(members),
                    mean(f for _, _, f in members),
                    mean(read) if read else None,
                    mean(g for g, _, _ in members),
                )
            )
    return out


# The listing subtask as the project's leads learn to write it (the oracle's demonstrations),
# and the list lines of a report: numbered ("3. Kano") or bulleted ("- Kano").
_LIST_SUBTASK = re.compile(r"^\s*(?:List\b|列出)")
_LIST_LINE = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+(?P<name>\S.*)$")


def listing_subagent(trajectory: Trajectory) -> AgentRun | None:
    """The first subagent asked for a list ("List the 9 most populous ...", "列出…")."""
    return next((a for a in trajectory.subagents if _LIST_SUBTASK.match(a.prompt)), None)


def listed_names(trajectory: Trajectory) -> list[str] | None:
    """The names the first listing subagent reported (numbered or bulleted lines); None when
    no subagent was asked for a list."""
    lister = listing_subagent(trajectory)
    return None if lister is None else names_in_report(lister)


def names_in_report(lister: AgentRun) -> list[str]:
    """The names a listing subagent reported (numbered or bulleted lines of its answer)."""
    found = (_LIST_LINE.match(line) for line in (lister.answer or "").splitlines())
    return [m.group("name").strip() for m in found if m]


@dataclass
class ListerCounts(AgainstGold):  # sizes: names per list
    tasks: int = 0  # wide multi-agent runs
    listed: int = 0  # ... whose lead delegated a listing subtask, with the gold's size known


def lister_analysis(trajectories: Iterable[Trajectory]) -> ListerCounts:
    """The first listing subagent of each wide multi-agent run: its names against the gold
    rows (the scorer's count when it read the answer, else the task's `n_rows`)."""
    out = ListerCounts()
    for traj in trajectories:
        if traj.task.kind != "wide" or traj.mode != "multi":
            continue
        out.tasks += 1
        gold = traj.scores.get("gold_rows") or traj.task.metadata.get("n_rows")
        names = listed_names(traj)
        if names is None or not isinstance(gold, int):
            continue
        out.listed += 1
        out.add(len(names), gold)
    return out


def lister_lines(trajectories: Iterable[Trajectory]) -> list[str]:
    """Markdown for `lister_analysis`; [] when no wide multi-agent run delegated a list."""
    c = lister_analysis(trajectories)
    if not c.listed:
        return []
    return [
        f"Listing subagents ('List ...'): {c.listed} of {c.tasks} wide runs; names listed "
        f"against gold rows: {c.text('names')}.",
        "",
    ]


def error_analysis_lines(rows: Sequence[ResultRow]) -> list[str]:
    """Markdown for the wide error analysis of `rows`; [] when they hold no wide answer."""
    e = wide_error_analysis(rows)
    if not e.answers:
        return []
    lines = [f"Wide answers: {e.answers}, tables read by the scorer: {e.read}.", ""]
    if e.by_gold_rows:
        lines += ["| gold rows | answers | item F1 | answer rows (read, mean) | gold rows (mean) |"]
        lines += ["|---|---:|---:|---:|---:|"]
        lines += [
            f"| {b.label} | {b.answers} | {b.item_f1:.3f} | "
            f"{'-' if b.answer_rows is None else f'{b.answer_rows:.1f}'} | {b.gold_rows:.1f} |"
            for b in e.by_gold_rows
        ]
        lines += ["", f"Answer rows against gold rows: {e.text('rows')}."]
    if e.unread:
        unread = ", ".join(f"{reason} ×{n}" for reason, n in e.unread.most_common())
        lines += ["", f"Answers not read: {unread}."]
    return [*lines, ""]
