"""Terminal views of agents at work: the live view of `wideseek ask` and the trace tree.

Both read only the Trajectory / AgentRun records, so what the live view shows while a task runs
is what `wideseek trace show` shows afterwards.
"""

from __future__ import annotations

import json

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from wideseek.types import AgentRun, ToolCall, Trajectory, Turn


def _short(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def describe_call(call: ToolCall) -> str:
    args = call.arguments
    # Show the argument a person cares about (query, url, subtasks) rather than raw JSON.
    for key in ("query", "url", "queries", "urls", "subtasks", "sub_agents"):
        if key in args:
            value = args[key]
            shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            return f"{call.name}({_short(shown, 60)})"
    return f"{call.name}({_short(json.dumps(args, ensure_ascii=False), 60)})"


def _agent_label(agent: AgentRun) -> Text:
    name = "lead" if agent.role == "lead" else f"{agent.role} {agent.agent_id}"
    label = Text(f"{name}", style="bold cyan" if agent.role != "subagent" else "cyan")
    label.append(f"  {_short(agent.prompt, 60)}", style="dim")
    label.append(f"  {len(agent.turns)} turns, {agent.duration_s:.1f}s")
    if agent.failures:
        label.append("  " + ", ".join(f.value for f in agent.failures), style="bold red")
    return label


def _turn_label(turn: Turn) -> Text:
    label = Text(f"turn {turn.index + 1}", style="bold")
    label.append(f"  gen {turn.generate_s:.2f}s")
    if turn.tool_calls:
        label.append(f", tools {turn.tools_s:.2f}s")
    label.append(f", {turn.usage.completion_tokens} tok")
    if turn.failures:
        label.append("  " + ", ".join(f.value for f in turn.failures), style="red")
    return label


def trace_tree(traj: Trajectory, show_text: bool = False) -> Tree:
    head = Text(f"{traj.task.id}  ", style="bold")
    head.append(f"{traj.mode}, {traj.profile}, {traj.model or 'engine'}, {traj.duration_s:.1f}s")
    if traj.reward is not None:
        head.append(f", reward {traj.reward:.3f}", style="green")
    if traj.error:
        head.append(f"  error: {_short(traj.error, 80)}", style="bold red")
    root = Tree(head)
    children: dict[int | None, list[AgentRun]] = {}
    for agent in traj.agents:
        children.setdefault(agent.parent_id, []).append(agent)

    def add_agent(parent: Tree, agent: AgentRun) -> None:
        node = parent.add(_agent_label(agent))
        spawned = iter(children.get(agent.agent_id, []))
        for turn in agent.turns:
            tnode = node.add(_turn_label(turn))
            if show_text and turn.response_text:
                tnode.add(Text(_short(turn.response_text, 200), style="dim"))
            for call, result in zip(turn.tool_calls, turn.tool_results, strict=False):
                style = "red" if result.error else ""
                cnode = tnode.add(Text(describe_call(call), style=style))
                if isinstance(result.data, dict) and "subagent_ids" in result.data:
                    for _ in result.data["subagent_ids"]:
                        child = next(spawned, None)
                        if child is not None:
                            add_agent(cnode, child)
                elif result.error or show_text:
                    cnode.add(Text(_short(result.text, 160), style=style or "dim"))
            for err in turn.errors:
                tnode.add(Text(_short(err, 160), style="red"))
        if agent.answer and agent.role != "lead":
            node.add(Text("→ " + _short(agent.answer, 120), style="green"))

    for agent in children.get(None, []):
        add_agent(root, agent)
    return root


class LiveAgentView:
    """An AgentObserver that shows every agent and its current step while a task runs."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.status: dict[int, tuple[AgentRun, str]] = {}
        self.live = Live(self._render(), console=self.console, refresh_per_second=8)

    def __enter__(self) -> LiveAgentView:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.update(self._render())
        self.live.__exit__(None, None, None)

    def _render(self) -> Group:
        table = Table(box=None, show_header=True, header_style="bold")
        table.add_column("agent")
        table.add_column("turns", justify="right")
        table.add_column("step")
        for agent, step in self.status.values():
            name = "lead" if agent.role == "lead" else f"{agent.role} {agent.agent_id}"
            table.add_row(name, str(len(agent.turns)), step)
        return Group(table)

    def _set(self, agent: AgentRun, step: str) -> None:
        self.status[agent.agent_id] = (agent, step)
        self.live.update(self._render())

    def agent_started(self, agent: AgentRun) -> None:
        self._set(agent, "thinking…")

    def turn_finished(self, agent: AgentRun, turn: Turn) -> None:
        calls = ", ".join(describe_call(c) for c in turn.tool_calls)
        self._set(agent, _short(calls, 90) if calls else "writing answer…")

    def agent_finished(self, agent: AgentRun) -> None:
        done = "failed: " + ", ".join(f.value for f in agent.failures) if not agent.ok else "done"
        self._set(agent, done)
