"""`run_many`: tasks through one orchestrator, concurrently, in task order. For tests only: the
library runs task suites with `wideseek.runtime.run_suite` (resumable, scored, recorded)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from wideseek.agents.orchestrator import Orchestrator
from wideseek.types import Task, Trajectory


async def run_many(
    orchestrator: Orchestrator, tasks: Iterable[Task], concurrency: int = 8, trial: int = 0
) -> list[Trajectory]:
    gate = asyncio.Semaphore(concurrency)

    async def one(task: Task) -> Trajectory:
        async with gate:
            return await orchestrator.run(task, trial)

    return list(await asyncio.gather(*(one(t) for t in tasks)))
