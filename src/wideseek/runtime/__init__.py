"""The runtime: a runnable system assembled from a `Config`, and the one suite runner.

- `assembly`: engine, search backend and orchestrator from a config (the defaults of every
  command live there).
- `suite`: `run_suite`, which `eval`, the world's oracle, dev evaluation and RL rollouts call,
  and `select_tasks`.
- `world_run`: `run_world`, the one entry that runs the agents on the offline world (eval,
  dev evaluation, the oracle, the width sweep), with the one set of evaluation limits
  (`EvalLimits`, `EVAL_LIMITS`) and the one run name (`run_name`).
- `oracle_run`: the world's oracle's demonstrations over a suite, with their context sizes.
- `width_sweep`: the same tasks at several widths, each beside a single agent at an equal
  token budget, written up as one table and one plot (`wideseek eval sweep`).

It sits above `agents`, `llm`, `tools`, `eval` and `world`, and below `train` and the CLI.
"""

from wideseek.runtime.assembly import (
    MODEL_ENV,
    close_engine,
    local_backend,
    local_model_dir,
    open_backend,
    open_engine,
    open_orchestrator,
    package_model_dir,
    shipped_model_dir,
    uses_shipped_model,
    with_model_defaults,
)
from wideseek.runtime.suite import SuiteRun, run_suite, select_tasks
from wideseek.runtime.world_run import (
    EVAL_LIMITS,
    EvalLimits,
    WorldRun,
    run_name,
    run_world,
    world_config,
    world_tasks,
)

__all__ = [
    "EVAL_LIMITS",
    "MODEL_ENV",
    "EvalLimits",
    "SuiteRun",
    "WorldRun",
    "close_engine",
    "local_backend",
    "local_model_dir",
    "open_backend",
    "open_engine",
    "open_orchestrator",
    "package_model_dir",
    "run_name",
    "run_suite",
    "run_world",
    "select_tasks",
    "shipped_model_dir",
    "uses_shipped_model",
    "with_model_defaults",
    "world_config",
    "world_tasks",
]
