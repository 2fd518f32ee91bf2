"""What each oracle agent does, as step routines: the lead, a subagent, the single agent.

Contract. Each policy is a generator (see `oracle.steps`) that yields one `Say` per turn —
thinking plus tool calls, or thinking plus the final answer — and receives the texts of that
turn's tool results. The lead only delegates and assembles:

- wide task: one subagent lists the rows (`MemberSubtask`), then entity subtasks of 1-3 rows
  each (fewer when a row needs several pages), at most `max_subagents` per turn, then the
  markdown table with the requested columns in the requested order;
- deep task: one subagent per hop, each fact feeding the next hop; then `\\boxed{answer}`.

A subagent lists members or looks its entities up (`oracle.members`, `oracle.lookup`) and reports
in the fixed phrasing of `oracle.text`. The single agent does the same work alone. Every value
in an answer comes from a report or a page the answering agent saw in its own context.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field

from wideseek.errors import WideseekError
from wideseek.types import Task
from wideseek.world.oracle.hops import HopPlan, next_ref, plan_hops
from wideseek.world.oracle.lookup import lookup, page_cost
from wideseek.world.oracle.members import list_members
from wideseek.world.oracle.steps import Call, Steps, T, parallel
from wideseek.world.oracle.text import (
    EntitySubtask,
    Subject,
    entity_line,
    member_report,
    member_subtask,
    parse_entity_lines,
    parse_entity_subtask,
    parse_member_subtask,
    question_subject,
    report_names,
)

MISSING = "N/A"
# Rows per subagent by the pages each row needs: a subagent's context holds about 3 pages.
GROUP_SIZE = {1: 3, 2: 2, 3: 1}


class OracleError(WideseekError, ValueError):
    """A conversation the oracle cannot play (unknown task, a subtask it did not write)."""


@dataclass
class Say:
    """One turn: optional thinking, then tool calls or (with no calls) the final answer."""

    think: str = ""
    calls: list[Call] = field(default_factory=list)
    answer: str = ""


Policy = Generator[Say | list[Call], list[str], None]
Delegate = Callable[[list[str]], Call]


def chunks(items: Sequence, size: int) -> list[list]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def thinking_first(note: str, steps: Steps[T]) -> Generator[Say | list[Call], list[str], T]:
    """`steps` with `note` thought in its first turn (the single agent picks its rows out of
    a longer list as a lister does before its report)."""
    try:
        first = next(steps)
    except StopIteration as done:
        return done.value
    outs = yield Say(note, calls=first) if note else first
    while True:
        try:
            outs = yield steps.send(outs)
        except StopIteration as done:
            return done.value


def markdown_table(titles: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [
        "| " + " | ".join(titles) + " |",
        "| " + " | ".join("---" for _ in titles) + " |",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    return "```markdown\n" + "\n".join(lines) + "\n```"


def _wide_plan(task: Task) -> tuple[Subject, str, list[str]]:
    subject = question_subject(task.question)
    titles = list(task.metadata.get("column_sources", {}))
    kind = task.metadata.get("entity_kind")
    if subject is None or not titles or not kind:
        raise OracleError(f"task {task.id}: no plan for this wide question")
    return subject, kind, titles


def entity_ref(kind: str, name: str, subject: Subject) -> str:
    """How a subtask names a row: cities and airports carry their country (namesakes)."""
    return f"{name} ({subject.params['country']})" if kind in ("city", "airport") else name


def _table(titles: Sequence[str], names: Sequence[str], found: dict[str, dict[str, str]]) -> str:
    rows = [[name, *(found.get(name, {}).get(t) or MISSING for t in titles[1:])] for name in names]
    return markdown_table(titles, rows)


def lead_wide(task: Task, delegate: Delegate, max_subagents: int) -> Policy:
    subject, kind, titles = _wide_plan(task)
    asked = titles[1:]
    reports = yield Say(
        "The task does not name the rows: one subagent lists them first.",
        [delegate([member_subtask(subject)])],
    )
    names = report_names(reports[0])
    refs = {name: entity_ref(kind, name, subject) for name in names}
    size = GROUP_SIZE[min(page_cost(kind, task.language, asked), 3)]
    subtasks = [
        EntitySubtask(kind, task.language, tuple(asked), tuple(refs[n] for n in group)).render()
        for group in chunks(names, size)
    ]
    found: dict[str, dict[str, str]] = {}
    batches = chunks(subtasks, max_subagents)
    for i, batch in enumerate(batches):
        # No division to get right: the subtasks follow the list, `size` names each, until it
        # ends (a small model wrote "25 rows, 3 per subagent: 5 subtasks." and made 3).
        think = (
            f"{len(names)} rows, {size} per subagent, in the listed order."
            if i == 0
            else "The next rows, in the same order."
        )
        reports = yield Say(think, [delegate(batch)])
        lines = parse_entity_lines(reports[0])
        for name in names:
            found.setdefault(name, {}).update(lines.get(refs[name], {}))
    yield Say("All reports are in; I assemble the table.", answer=_table(titles, names, found))


def lead_deep(task: Task, delegate: Delegate) -> Policy:
    plan = _deep_plan(task)
    ref, value = plan.first_ref, None
    for n, hop in enumerate(plan.hops):
        subtask = EntitySubtask(hop.kind, hop.lang, (hop.title,), (ref,)).render()
        think = f"Hop {n + 1} of {len(plan.hops)}: the {hop.title} of {ref}."
        reports = yield Say(think, [delegate([subtask])])
        value = parse_entity_lines(reports[0]).get(ref, {}).get(hop.title)
        if value is None:
            break
        ref = next_ref(hop, value, ref)
    yield Say(answer=f"\\boxed{{{value or 'unknown'}}}")


def _deep_plan(task: Task) -> HopPlan:
    plan = plan_hops(task)
    if plan is None:
        raise OracleError(f"task {task.id}: no plan for this question")
    return plan


def subagent(subtask: str, capacity: int, one_tool: bool = False) -> Policy:
    subject = parse_member_subtask(subtask)
    if subject is not None:
        members = yield from list_members(subject, capacity)
        yield Say(members.note, answer=member_report(members.names, subject.lang))
        return
    sub = parse_entity_subtask(subtask)
    if sub is None:
        raise OracleError(f"not a subtask the oracle writes: {subtask[:80]!r}")
    routines = [lookup(sub.kind, sub.lang, ref, sub.titles, capacity) for ref in sub.refs]
    results = yield from parallel(routines, capacity, one_tool)
    lines = [entity_line(ref, values) for ref, values in zip(sub.refs, results, strict=True)]
    yield Say(answer="\n".join(lines))


def single_wide(task: Task, capacity: int) -> Policy:
    subject, kind, titles = _wide_plan(task)
    members = yield from list_members(subject, capacity)
    names = members.names
    refs = [entity_ref(kind, name, subject) for name in names]
    routines = [lookup(kind, task.language, ref, titles[1:], capacity) for ref in refs]
    results = yield from thinking_first(members.note, parallel(routines, capacity))
    found = {
        name: {t: v for t, v in (r or {}).items() if v}
        for name, r in zip(names, results, strict=True)
    }
    yield Say(answer=_table(titles, names, found))


def single_deep(task: Task, capacity: int) -> Policy:
    plan = _deep_plan(task)
    ref, value = plan.first_ref, None
    for hop in plan.hops:
        values = yield from lookup(hop.kind, hop.lang, ref, (hop.title,), capacity)
        value = (values or {}).get(hop.title)
        if value is None:
            break
        ref = next_ref(hop, value, ref)
    yield Say(answer=f"\\boxed{{{value or 'unknown'}}}")
