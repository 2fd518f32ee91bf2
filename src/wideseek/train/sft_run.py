"""One SFT run as configured in a YAML file: what `wideseek train sft --config` executes.

Contract: `SFTRun` is the file's schema; `run_sft(run)` does, in order:
1) SFT of `model` on the assistant tokens of the given trajectories (at most `role_limits`
   examples of a role; more selections of files, roles and agents in `also`; tokenised in
   parallel and cached on disk, train/example_cache.py, so a second or resumed run starts
   training at once), in `out_dir/sft/`;
2) at every `train.eval_every` steps and at the end: the teacher-forced probe (loss, token and
   copy accuracy, train/copy_probe.py) on the held-out `probe_trajectories` when given, and
   the end-to-end dev evaluation (train/dev_eval.py) when `dev_eval` is set, both as
   `{"eval": ...}` rows of `out_dir/sft/metrics.jsonl`;
and returns the final model directory (`out_dir/sft/final`). Training resumes from its last
checkpoint, so running the same command again continues where it stopped. `plan_run(run)`
says what the run would train on, and for how many steps and tokens, without training
(train/sft_plan.py).

This module wires data, trainer and evaluations together; each lives in its own module.
"""

from __future__ import annotations

import glob
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from wideseek.errors import WideseekError
from wideseek.llm.model_loading import load_causal_lm, load_tokenizer
from wideseek.llm.resolved_model import ResolvedModel, resolve_model
from wideseek.train.dev_eval import DevEvalSettings, make_evaluator
from wideseek.train.example_cache import ExampleKey, cached_examples, parallel_examples
from wideseek.train.sft import Evaluate, SFTConfig, train_sft
from wideseek.train.sft_data import SFTExample
from wideseek.train.sft_plan import SFTPlan, plan_sft
from wideseek.types import Role, Trajectory, read_trajectories


class RunError(WideseekError, ValueError):
    """A run file that points to missing or unusable data."""


class Selection(BaseModel):
    """Which agents of which trajectory files are trained on, and how many of each role."""

    model_config = ConfigDict(extra="forbid")

    trajectories: list[str] = Field(min_length=1, description="JSONL files or globs (oracle)")
    roles: list[Role] = Field(["lead", "subagent", "single"], description="agents trained on")
    agents: str | None = Field(
        None,
        description="a regular expression: only agents whose task (a subagent's subtask, a "
        "lead's question) it finds are trained on, e.g. '^(List|列出)' for the listing "
        "subagents (None: every agent of the roles)",
    )
    role_limits: dict[Role, int] = Field(
        default_factory=dict,
        description="at most N examples of a role (a seeded sample), e.g. {subagent: 300}: "
        "subagents outnumber leads and their pages make them long",
    )

    @field_validator("agents")
    @classmethod
    def _agents_is_a_pattern(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as e:
                raise ValueError(f"not a regular expression: {e}") from None
        return value


class SFTRun(Selection):
    """The run file: the start model, the main selection of examples (the fields it shares
    with `Selection`), further selections (`also`), training settings and evaluations."""

    model: str = Field(
        description="initial model: 'default' (SmolLM2-135M), a .gguf file, a model or adapter dir"
    )
    out_dir: str = Field(description="sft/ goes here")
    also: list[Selection] = Field(
        default_factory=list,
        description="more selections trained on beside the main one, each with its own "
        "files, roles, agents pattern and role limits: e.g. every listing subagent, and a "
        "sample of the other agents so that their skills hold (an agent that two selections "
        "pick is trained on twice)",
    )
    probe_trajectories: list[str] = Field(
        default_factory=list, description="held-out trajectories for the copy probe"
    )
    probe_examples: int = Field(64, ge=1, description="examples of the probe set used")
    train: dict[str, Any] = Field(
        default_factory=dict,
        description="SFTConfig fields (wideseek.train.sft) but model and out_dir, checked when "
        "the file loads",
    )
    dev_eval: DevEvalSettings | None = Field(
        None, description="end-to-end dev evaluation at every evaluation (None: none)"
    )
    tokenize_workers: int | None = Field(
        None,
        ge=1,
        description="processes that tokenise the demonstrations (None: this machine's CPUs, "
        "at most 8); the result is cached, so a second or resumed run skips it",
    )

    @field_validator("train")
    @classmethod
    def _train_fields_are_sft_config_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in ("model", "out_dir"):
            if key in value:
                raise ValueError(f"{key}: set at the top of the run file, not under train")
        try:
            SFTConfig(**{"model": "-", "out_dir": "-", **value})
        except ValidationError as e:
            err = e.errors()[0]
            raise ValueError(f"{'.'.join(map(str, err['loc']))}: {err['msg']}") from None
        return value

    @property
    def selections(self) -> list[Selection]:
        """The main selection (this file's own fields), then each of `also`."""
        return [self, *self.also]


def expand_paths(patterns: list[str]) -> list[Path]:
    paths: list[Path] = []
    for pattern in patterns:
        found = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not found or not all(Path(p).is_file() for p in found):
            raise RunError(f"{pattern}: no such trajectory file")
        paths += [Path(p) for p in found]
    return paths


def load_trajectories(paths: list[Path]) -> list[Trajectory]:
    """Each file's trajectories by task id and trial, the files in their order. A run file
    lists tasks as they finished (in parallel: another order each time it is made), and the
    examples' order fixes the role limits' sample and the batches: sorted, the same
    demonstrations made on another machine train the same way (and resume there)."""
    trajectories: list[Trajectory] = []
    for path in paths:
        try:
            found = read_trajectories(path)
        except ValueError as e:
            raise RunError(f"{path}: not a trajectory file ({type(e).__name__})") from e
        trajectories += sorted(found, key=lambda t: (t.task.id, t.trial))
    return trajectories


def _examples(
    selection: Selection,
    model: ResolvedModel,
    patterns: list[str],
    max_length: int,
    workers: int | None,
) -> list[SFTExample]:
    """The examples of the trajectory files `patterns` name, tokenised once (cached on disk,
    train/example_cache.py), then sampled down to the selection's role limits."""
    paths = expand_paths(patterns)
    roles = tuple(selection.roles)
    key = ExampleKey(tuple(paths), model.tokenizer_dir, max_length, roles, selection.agents)

    def build() -> list[SFTExample]:
        trajectories = select_agents(load_trajectories(paths), selection.agents)
        tokenizer = load_tokenizer(model)
        return parallel_examples(tokenizer, trajectories, max_length, roles, workers)

    return limit_roles(cached_examples(key, build), selection.role_limits)


def _training_examples(
    run: SFTRun, model: ResolvedModel, max_length: int
) -> list[tuple[Selection, list[SFTExample]]]:
    """Each selection of the run with its examples."""
    workers = run.tokenize_workers
    return [
        (selection, _examples(selection, model, selection.trajectories, max_length, workers))
        for selection in run.selections
    ]


def selection_label(selection: Selection) -> str:
    """'subagent /^(List)/ in oracle-wide-train-multi': roles, agents pattern, files' folders."""
    files = ", ".join(Path(p).parent.name or p for p in selection.trajectories)
    pattern = f" /{selection.agents}/" if selection.agents else ""
    return f"{', '.join(selection.roles)}{pattern} in {files}"


def select_agents(trajectories: list[Trajectory], pattern: str | None) -> list[Trajectory]:
    """Each trajectory with only the agents whose task `pattern` finds (None: unchanged)."""
    if pattern is None:
        return trajectories
    wanted = re.compile(pattern)
    return [
        t.model_copy(update={"agents": [a for a in t.agents if wanted.search(a.prompt)]})
        for t in trajectories
    ]


def limit_roles(examples: list[SFTExample], limits: dict[str, int]) -> list[SFTExample]:
    """At most `limits[role]` examples of each limited role, sampled with a fixed seed; the
    kept examples stay in their original order."""
    keep = set(range(len(examples)))
    for role, n in limits.items():
        of_role = [i for i, e in enumerate(examples) if e.role == role]
        if len(of_role) > n:
            keep -= set(of_role) - set(random.Random(0).sample(of_role, n))
    return [e for i, e in enumerate(examples) if i in keep]


def _probe(examples: list[SFTExample], prefix: str) -> Evaluate:
    """Teacher-forced metrics on held-out examples, as an evaluate callback."""

    def probe(model_dir: str, step: int) -> dict[str, Any]:
        from wideseek.train.copy_probe import teacher_forced_metrics

        model = resolve_model(model_dir)
        metrics = teacher_forced_metrics(load_causal_lm(model), load_tokenizer(model), examples)
        return {f"{prefix}_{k}": v for k, v in metrics.items()}

    return probe


def _evaluator(run: SFTRun, model: ResolvedModel, out: Path, max_length: int) -> Evaluate | None:
    """Probe and/or dev evaluation, merged into one metrics dict per evaluation."""
    parts: list[Callable[[str, int], dict[str, Any]]] = []
    if run.probe_trajectories:
        probe_set = _examples(run, model, run.probe_trajectories, max_length, run.tokenize_workers)
        probe_set = probe_set[: run.probe_examples]
        if not probe_set:
            raise RunError("probe_trajectories hold no usable examples")
        parts.append(_probe(probe_set, "probe"))
    if run.dev_eval is not None:
        parts.append(make_evaluator(run.dev_eval, out))
    if not parts:
        return None

    def evaluate(model_dir: str, step: int) -> dict[str, Any]:
        return {k: v for part in parts for k, v in part(model_dir, step).items()}

    return evaluate


def _inputs(
    run: SFTRun,
) -> tuple[SFTConfig, ResolvedModel, list[tuple[Selection, list[SFTExample]]]]:
    """The trainer's config, the start model (resolved once: the data's tokenizer and the
    trainer's weights) and the examples of each selection."""
    out_dir = str(Path(run.out_dir) / "sft")
    config = SFTConfig(**{**run.train, "model": run.model, "out_dir": out_dir})
    model = resolve_model(run.model)
    groups = _training_examples(run, model, config.max_length)
    if not any(examples for _, examples in groups):
        files = [f for selection in run.selections for f in selection.trajectories]
        raise RunError(
            f"no usable examples in {', '.join(files)} (failed agents and ones "
            f"longer than max_length={config.max_length} are skipped)"
        )
    return config, model, groups


def run_sft(run: SFTRun, show_progress: bool = True) -> Path:
    """SFT with evaluations; returns the final model directory."""
    config, model, groups = _inputs(run)
    evaluate = _evaluator(run, model, Path(run.out_dir) / "sft", config.max_length)
    return train_sft(config, _joined(groups), evaluate, show_progress, resolved=model)


def plan_run(run: SFTRun, processes: int = 1) -> SFTPlan:
    """What `run_sft(run)` would train on and for how long (train/sft_plan.py), by selection
    when `run.also` adds some; trains nothing, and leaves the examples cached for the run."""
    config, _, groups = _inputs(run)
    parts = []
    if run.also:
        names = ["main", *(f"also {i}" for i in range(1, len(groups)))]
        parts = [
            (f"{name}: {selection_label(s)}", group)
            for name, (s, group) in zip(names, groups, strict=True)
        ]
    return plan_sft(config, _joined(groups), processes, parts)


def _joined(groups: list[tuple[Selection, list[SFTExample]]]) -> list[SFTExample]:
    """The selections' examples in one list, in the selections' order."""
    return [e for _, group in groups for e in group]
