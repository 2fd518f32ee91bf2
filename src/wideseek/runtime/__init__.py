"""The runtime: a runnable system assembled from a `Config`, and the one suite runner.

- `assembly`: engine, search backend and orchestrator from a config (the defaults of every
  command live there).
- `suite`: `run_suite`, which `eval`, the world's oracle, dev evaluation and RL rollouts call,
  and `select_tasks`.
- `oracle_run`: the world's oracle over a suite, with the context sizes of its agents.

It sits above `agents`, `llm`, `tools`, `eval` and `world`, and below `train` and the CLI.
"""

from wideseek.runtime.assembly import (
    MODEL_ENV,
    close_engine,
    local_model_dir,
    open_backend,
    open_engine,
    open_orchestrator,
    package_model_dir,
    shipped_model_dir,
    uses_shipped_model,
    with_model_defaults,
)
from wideseek.runtime.suite import SuiteRun, headline_metric, run_suite, select_tasks

__all__ = [
    "MODEL_ENV",
    "SuiteRun",
    "close_engine",
    "headline_metric",
    "local_model_dir",
    "open_backend",
    "open_engine",
    "open_orchestrator",
    "package_model_dir",
    "run_suite",
    "select_tasks",
    "shipped_model_dir",
    "uses_shipped_model",
    "with_model_defaults",
]
