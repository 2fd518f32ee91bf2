"""The orchestrator: one Task in, one Trajectory out.

Multi-agent mode: the lead agent's only tool is the delegation tool; each call spawns up to
`max_subagents` subagents that run concurrently (asyncio.gather), each in a fresh, isolated
context with its subtask as the prompt and the search/access tools of the profile. Their final
reports come back to the lead as the tool result. Single-agent mode: one agent with search and
access, the baseline.

Agent ids are assigned in order of creation (lead 0, subagents 1, 2, ... across the whole run),
before the subagents start, so a trajectory's layout is deterministic even though subagents
finish in any order. The orchestrator knows where tools come from only through `tools_for(role)`.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from wideseek.agents import prompts
from wideseek.agents.agent_loop import AgentObserver, LoopLimits, derive_seed, run_agent
from wideseek.config import AgentConfig, ToolsConfig
from wideseek.llm.engine import Engine
from wideseek.profiles import ToolProfile, get_profile
from wideseek.tools.base import SearchBackend, Tool
from wideseek.tools.search_tools import Extractor, make_tools
from wideseek.types import AgentRun, Failure, Message, Role, Task, ToolResult, Trajectory

ToolsFor = Callable[[Role], list[Tool]]
Spawn = Callable[[list[str]], Awaitable[list[AgentRun]]]


class DelegateTool:
    """The lead's tool: run subagents in parallel on the given subtasks, return their reports."""

    repeatable = True  # the same subtasks again start new subagents: a retry, not a loop

    def __init__(self, profile: ToolProfile, spawn: Spawn, max_subagents: int) -> None:
        self.profile = profile
        self.name = profile.delegate_tool
        self.description = (
            f"Start up to {max_subagents} subagents that work in parallel, one per subtask, "
            "each with search and access tools; returns each subagent's report."
        )
        self.parameters: dict[str, Any] = profile.delegate_parameters()
        self._spawn = spawn
        self._max = max_subagents

    async def call(self, arguments: dict[str, Any]) -> ToolResult:
        subtasks = self.profile.subtasks_of(arguments)
        if not subtasks:
            return ToolResult(
                text=f"`{self.name}` needs at least one non-empty subtask.",
                error=True,
                data={"subagent_ids": [], "dropped": 0},
            )
        kept, dropped = subtasks[: self._max], len(subtasks) - self._max
        runs = await self._spawn(kept)
        reports = [
            prompts.subagent_report(n + 1, run.prompt, run.answer, run.ok)
            for n, run in enumerate(runs)
        ]
        if dropped > 0:
            reports.append(f"({dropped} subtasks beyond the limit of {self._max} were not run)")
        return ToolResult(
            text="\n\n".join(reports),
            data={"subagent_ids": [r.agent_id for r in runs], "dropped": max(0, dropped)},
            error=not any(r.ok for r in runs),
        )


class Orchestrator:
    def __init__(
        self,
        engine: Engine,
        tools_for: ToolsFor,
        config: AgentConfig | None = None,
        observer: AgentObserver | None = None,
    ) -> None:
        self.engine = engine
        self.tools_for = tools_for
        self.config = config or AgentConfig()
        self.profile = get_profile(self.config.profile)
        self.observer = observer

    @classmethod
    def with_backend(
        cls,
        engine: Engine,
        backend: SearchBackend,
        config: AgentConfig | None = None,
        observer: AgentObserver | None = None,
        extractor: Extractor | None = None,
        tools: ToolsConfig | None = None,
    ) -> Orchestrator:
        """Agents whose search/access tools (of the config's profile) ask `backend`."""
        config = config or AgentConfig()
        settings = tools or ToolsConfig()

        def tools_for(role: Role) -> list[Tool]:  # make_tools refuses the lead: it delegates
            return make_tools(
                config.profile, role, backend, settings, config.max_tool_calls, extractor
            )

        return cls(engine, tools_for, config, observer)

    def _limits(self, role: Role, task: Task, trial: int, agent_id: int) -> LoopLimits:
        """The loop limits of one agent; its sampling seed is its own stream of the config's
        seed, so the trials of a task (a training group) and the agents of a trial differ,
        and the same (seed, task, trial, agent) reproduces."""
        c = self.config
        seed = None if c.seed is None else derive_seed(c.seed, task.id, trial, agent_id)
        cap = c.max_response_tokens
        if role != "subagent" and c.lead_response_tokens is not None:  # the table's writer
            cap = c.lead_response_tokens
        return LoopLimits(
            max_turns=self._turns(role),
            max_calls_per_turn=self.profile.max_calls_per_turn(role, c.max_tool_calls),
            context_length=c.context_length,
            max_response_tokens=cap,
            temperature=c.temperature,
            top_p=c.top_p,
            top_k=c.top_k,
            seed=seed,
            turn_hints=c.turn_hints,
            max_repeated_turns=c.max_repeated_turns,
        )

    def _turns(self, role: Role) -> int:
        c = self.config
        return {"lead": c.lead_turns, "subagent": c.subagent_turns, "single": c.single_turns}[role]

    def _hint(self, role: Role) -> int | None:
        return self._turns(role) if self.config.turn_hints else None

    async def run(self, task: Task, trial: int = 0) -> Trajectory:
        c = self.config
        traj = Trajectory(
            task=task,
            mode=c.mode,
            profile=c.profile,
            model=getattr(self.engine, "model_name", ""),
            trial=trial,
            seed=c.seed,
        )
        try:
            root = await (
                self._run_multi(task, trial, traj)
                if c.mode == "multi"
                else self._run_single(task, trial, traj)
            )
            traj.final_answer = root.answer
            if not root.answer:
                root.failures.append(Failure.NO_ANSWER)
        except Exception as e:  # a bug in a tool or engine must not lose the batch
            traj.error = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}"
        traj.duration_s = time.time() - traj.started_at
        return traj

    async def _run_single(self, task: Task, trial: int, traj: Trajectory) -> AgentRun:
        c = self.config
        agent = AgentRun(agent_id=0, role="single", prompt=task.question)
        agent.messages = [
            Message(role="system", content=prompts.single_system(task, c.max_tool_calls)),
            Message(role="user", content=prompts.task_message(task, self._hint("single"))),
        ]
        traj.agents.append(agent)
        limits = self._limits("single", task, trial, agent.agent_id)
        return await run_agent(agent, self.engine, self.tools_for("single"), limits, self.observer)

    async def _run_multi(self, task: Task, trial: int, traj: Trajectory) -> AgentRun:
        c = self.config
        lead = AgentRun(agent_id=0, role="lead", prompt=task.question)
        traj.agents.append(lead)

        async def spawn(subtasks: list[str]) -> list[AgentRun]:
            runs = []
            for subtask in subtasks:
                run = AgentRun(
                    agent_id=len(traj.agents), role="subagent", parent_id=0, prompt=subtask
                )
                user = prompts.subtask_message(
                    task, subtask, self.profile.subagent_sees_main_task, self._hint("subagent")
                )
                run.messages = [
                    Message(role="system", content=prompts.subagent_system(c.max_tool_calls)),
                    Message(role="user", content=user),
                ]
                traj.agents.append(run)
                runs.append(run)
            await asyncio.gather(
                *(
                    run_agent(
                        r,
                        self.engine,
                        self.tools_for("subagent"),
                        self._limits("subagent", task, trial, r.agent_id),
                        self.observer,
                    )
                    for r in runs
                )
            )
            if not all(r.ok for r in runs) and Failure.SUBAGENT_FAILED not in lead.failures:
                lead.failures.append(Failure.SUBAGENT_FAILED)
            return runs

        delegate = DelegateTool(self.profile, spawn, c.max_subagents)
        lead.messages = [
            Message(
                role="system", content=prompts.lead_system(task, delegate.name, c.max_subagents)
            ),
            Message(role="user", content=prompts.task_message(task, self._hint("lead"))),
        ]
        limits = self._limits("lead", task, trial, lead.agent_id)
        return await run_agent(lead, self.engine, [delegate], limits, self.observer)
