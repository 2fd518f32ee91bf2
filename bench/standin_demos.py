"""Stand-in SFT demonstrations for deep (1-hop QA) tasks, for pipeline probes before the oracle.

A scripted policy reads the world's planning metadata: the lead delegates the question to one
subagent, which searches the question, opens the page that holds the answer, and reports the
answer with its URL; the lead answers in \\boxed{}. The answer is copied from the page into the
report and from the report into the box: the copying a small model must learn. These are NOT
the oracle's demonstrations (world/oracle.py); they exist to measure the SFT pipeline early.

    PYTHONPATH=src python bench/standin_demos.py --split train --n 1500 \
        --out runs/standin-train.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
from itertools import islice

from wideseek.agents.orchestrator import Orchestrator
from wideseek.config import AgentConfig
from wideseek.llm.scripted import ScriptedEngine
from wideseek.llm.toolcall import format_tool_call
from wideseek.tools.local_corpus import LocalCorpus
from wideseek.types import Task, write_trajectories
from wideseek.world import load_world
from wideseek.world.suites import deep_tasks


def responder_for(tasks: list[Task]):
    by_question = {t.question: t for t in tasks}

    def task_of(request) -> Task:
        text = request.messages[1].content
        return next(t for q, t in by_question.items() if q in text)

    def respond(request) -> str:
        task = task_of(request)
        answer, page = task.golden_answers[0], task.metadata["pages"][-1]
        tools = [m for m in request.messages if m.role == "tool"]
        if request.metadata["role"] == "lead":
            if not tools:
                return format_tool_call("create_subagents", {"subtasks": [task.question]})
            return f"\\boxed{{{answer}}}"
        if not tools:
            return format_tool_call("search", {"query": task.question})
        if len(tools) == 1:
            return format_tool_call("access", {"url": page})
        return f"{answer} (source: {page})"

    return respond


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", default="train")
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--skip", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    world = load_world()
    tasks = list(islice(deep_tasks(world, args.split), args.skip, args.skip + args.n))
    tasks = [t for t in tasks if t.metadata["hops"] == 1]
    engine = ScriptedEngine(responder=responder_for(tasks))
    corpus = LocalCorpus(world.corpus_path)
    orchestrator = Orchestrator.with_backend(engine, corpus, AgentConfig(turn_hints=False))
    trajectories = [await orchestrator.run(t) for t in tasks]
    write_trajectories(args.out, trajectories)
    print(f"{len(trajectories)} trajectories -> {args.out}")


if __name__ == "__main__":
    asyncio.run(main())
