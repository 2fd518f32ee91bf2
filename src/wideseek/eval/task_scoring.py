"""Score a finished trajectory against its task: the `Scorer` the benchmark runner takes.

Wide tasks (WideSearch format) are scored with the WideSearch scorer against the gold table at
`task.metadata["gold"]` (the offline world's suites set it) or `<gold_dir>/<id>.csv`; QA tasks
with EM / token F1 over `task.golden_answers`. Gold tables are read once and kept. A task whose
gold cannot be read scores zero with the reason in `msg`, so one bad file never stops a run.
Answer tables are read as the official scorer reads them unless `lenient_tables=True` (bare
carriage returns in cells read as spaces: a departure from it, see `table_extract`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from wideseek.eval.judges import Judge, OfflineJudge
from wideseek.eval.qa_scorer import score_qa
from wideseek.eval.widesearch_data import WideSearchDataError, load_gold
from wideseek.eval.widesearch_scorer import ScoreOptions, WideSearchScore, score_widesearch
from wideseek.types import Task, Trajectory


class TaskScorer:
    """`await scorer(task, trajectory) -> dict` for wide and QA tasks alike."""

    def __init__(
        self,
        judge: Judge | None = None,
        gold_dir: str | Path | None = None,
        options: ScoreOptions | None = None,
        lenient_tables: bool = False,
    ) -> None:
        self.judge = judge or OfflineJudge()
        self.gold_dir = Path(gold_dir) if gold_dir else None
        if lenient_tables:  # a shortcut for options.lenient_tables, which it switches on
            options = (options or ScoreOptions()).model_copy(update={"lenient_tables": True})
        self.options = options
        self._gold: dict[str, pd.DataFrame] = {}

    def gold_for(self, task: Task) -> pd.DataFrame:
        if task.id not in self._gold:
            where = task.metadata.get("gold")
            if where:
                path = Path(where)
                directory, name = path.parent, path.stem
            elif self.gold_dir is not None:
                directory, name = self.gold_dir, task.id
            else:
                raise WideSearchDataError(f"{task.id}: no gold table (pass a gold directory)")
            required = (task.evaluation or {}).get("required")
            self._gold[task.id] = load_gold(directory, name, required)
        return self._gold[task.id]

    async def score_text(self, task: Task, answer: str | None) -> dict[str, Any]:
        if task.kind == "qa":
            return score_qa(answer or "", task.golden_answers or []).model_dump()
        try:
            gold = self.gold_for(task)
        except WideSearchDataError as e:
            return WideSearchScore(msg=str(e)).model_dump()
        score = await score_widesearch(task, answer, gold, self.judge, self.options)
        return score.model_dump()

    async def __call__(self, task: Task, trajectory: Trajectory) -> dict[str, Any]:
        return await self.score_text(task, trajectory.final_answer)
