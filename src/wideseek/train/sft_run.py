"""One SFT run as configured in a YAML file: what `wideseek train sft --config` executes.

Contract: `SFTRun` is the file's schema; `run_sft(run)` does, in order:
1) optional phases, each starting from the model of the one before: induction (random
   token spans shown twice, train/curriculum.py) in `out_dir/induction/`, a language-model
   warm-up on corpus pages (loss on every token) in `out_dir/warmup/`, then the copy
   curriculum (train/curriculum.py: deep answers from their pages, and with `answers: true`
   every oracle agent's final answer after what it read) in `out_dir/copy/`, each probed on
   held-out examples of its own kind every `eval_every` steps;
2) SFT on the assistant tokens of the given trajectories, in `out_dir/sft/`;
3) at every `train.eval_every` steps and at the end: the teacher-forced probe (loss, token and
   copy accuracy) on the held-out `probe_trajectories`, and the end-to-end dev evaluation when
   `dev_eval` is set, both as `{"eval": ...}` rows of `out_dir/sft/metrics.jsonl`;
and returns the final model directory (`out_dir/sft/final`). Each phase resumes on its own, so
running the same command again continues where it stopped.

This module wires data, trainer and evaluations together; each lives in its own module.
"""

from __future__ import annotations

import glob
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from wideseek.errors import WideseekError
from wideseek.llm.model_dir import load_causal_lm, load_tokenizer
from wideseek.train.dev_eval import DevEvalSettings, make_evaluator
from wideseek.train.sft import Evaluate, SFTConfig, train_sft
from wideseek.train.sft_data import SFTExample, page_examples, trajectory_examples
from wideseek.train.trainable import load_training_tokenizer
from wideseek.types import Trajectory, read_trajectories


class RunError(WideseekError, ValueError):
    """A run file that points to missing or unusable data."""


class Phase(BaseModel):
    """A training phase before SFT; its other SFTConfig fields come from `train`."""

    model_config = ConfigDict(extra="forbid")

    epochs: float = Field(1.0, gt=0)
    lr: float = Field(1e-3, gt=0)
    warmup_steps: int = Field(20, ge=0)
    batch_tokens: int = Field(8192, ge=64)
    max_length: int = Field(512, ge=2, description="longer examples are cut or skipped")
    eval_every: int = Field(0, ge=0, description="probe on the dev split every N steps")
    min_lr_ratio: float | None = Field(
        None, ge=0, le=1, description="cosine floor; 1.0: flat after warm-up; None: train's"
    )


class Warmup(Phase):
    pages: int | None = Field(None, ge=1, description="first N corpus pages; None: all")


class Induction(Phase):
    examples: int = Field(16_000, ge=1, description="random spans, each shown twice")
    span: int = Field(48, ge=2, description="tokens per span")
    max_length: int = Field(2048, ge=2)


class CopyCurriculum(Phase):
    answers: bool = Field(
        False, description="add each oracle agent's final answer after what it read (reports)"
    )


class SFTRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        description="initial model: 'default' (SmolLM2-135M), a .gguf file, a model or adapter dir"
    )
    out_dir: str = Field(description="warmup/ and sft/ go here")
    trajectories: list[str] = Field(min_length=1, description="JSONL files or globs (oracle)")
    probe_trajectories: list[str] = Field(
        default_factory=list, description="held-out trajectories for the copy probe"
    )
    probe_examples: int = Field(64, ge=1, description="examples of the probe set used")
    roles: list[str] = Field(["lead", "subagent", "single"], description="agents trained on")
    role_limits: dict[str, int] = Field(
        default_factory=dict,
        description="at most N examples of a role (a seeded sample), e.g. {subagent: 300}: "
        "subagents outnumber leads and their pages make them long",
    )
    world: str | None = Field(None, description="world dir for warm-up pages; None: shipped")
    induction: Induction | None = Field(
        None, description="copy-a-repeat examples first, so induction heads form early"
    )
    warmup: Warmup | None = None
    copy_curriculum: CopyCurriculum | None = Field(
        None, description="short page -> exact answer examples before SFT (train/curriculum.py)"
    )
    train: dict[str, Any] = Field(default_factory=dict, description="SFTConfig fields")
    dev_eval: DevEvalSettings | None = None

    @field_validator("train")
    @classmethod
    def _train_fields_are_sft_config_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            SFTConfig(**{"model": "-", "out_dir": "-", **value})
        except ValidationError as e:
            err = e.errors()[0]
            raise ValueError(f"{'.'.join(map(str, err['loc']))}: {err['msg']}") from None
        return value


def expand_paths(patterns: list[str]) -> list[Path]:
    paths: list[Path] = []
    for pattern in patterns:
        found = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not found or not all(Path(p).is_file() for p in found):
            raise RunError(f"{pattern}: no such trajectory file")
        paths += [Path(p) for p in found]
    return paths


def load_trajectories(patterns: list[str]) -> list[Trajectory]:
    trajectories: list[Trajectory] = []
    for path in expand_paths(patterns):
        try:
            trajectories += read_trajectories(path)
        except ValueError as e:
            raise RunError(f"{path}: not a trajectory file ({type(e).__name__})") from e
    return trajectories


def _examples(run: SFTRun, patterns: list[str], max_length: int) -> list[SFTExample]:
    tokenizer = load_training_tokenizer(run.model)
    trajectories = load_trajectories(patterns)
    examples = list(trajectory_examples(tokenizer, trajectories, max_length, tuple(run.roles)))
    return limit_roles(examples, run.role_limits)


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

        model, tokenizer = load_causal_lm(model_dir), load_tokenizer(model_dir)
        metrics = teacher_forced_metrics(model, tokenizer, examples)
        return {f"{prefix}_{k}": v for k, v in metrics.items()}

    return probe


def _phase(
    run: SFTRun, model: str, phase: Phase, name: str, train: list[SFTExample], dev: list[SFTExample]
) -> str:
    """Train one pre-SFT phase in out_dir/<name>; returns its final model directory."""
    evaluate = (
        _probe(dev[: run.probe_examples], f"{name}_probe") if phase.eval_every and dev else None
    )
    return str(train_sft(phase_config(run, phase, model, name), train, evaluate=evaluate))


def phase_config(run: SFTRun, phase: Phase, model: str, name: str) -> SFTConfig:
    """The trainer settings of a phase: its own fields over `train`'s, in out_dir/<name>."""
    fields = {
        **run.train,
        # Phase's own fields, not a subclass's data fields; unset ones come from `train`
        **phase.model_dump(include=set(Phase.model_fields), exclude_none=True),
        "model": model,
        "out_dir": str(Path(run.out_dir) / name),
    }
    return SFTConfig(**fields)


def _pre_sft_phases(run: SFTRun) -> str:
    """Induction, LM warm-up on pages, copy curriculum, as configured; returns the model."""
    model = run.model
    if run.induction is None and run.warmup is None and run.copy_curriculum is None:
        return model
    from wideseek.train.texts import corpus_texts
    from wideseek.world import load_world

    world = load_world(run.world)
    tokenizer = load_training_tokenizer(run.model)
    # the pages are read only by the phases that use them (the copy curriculum reads tasks)
    texts = corpus_texts(world) if run.induction or run.warmup else []
    if run.induction is not None:
        from wideseek.train.curriculum import induction_examples, token_pool

        ind = run.induction
        pool = token_pool(tokenizer, texts)
        train = list(induction_examples(pool, ind.examples, ind.span, seed=0))
        dev = list(induction_examples(pool, run.probe_examples, ind.span, seed=1))
        model = _phase(run, model, ind, "induction", train, dev)
    if run.warmup is not None:
        w = run.warmup
        train = list(page_examples(tokenizer, texts[: w.pages], w.max_length))
        # held out when the warm-up reads only the first pages; else a sample of what it read
        dev_pages = texts[w.pages :] if w.pages and w.pages < len(texts) else texts
        dev = list(page_examples(tokenizer, dev_pages[: run.probe_examples], w.max_length))
        model = _phase(run, model, w, "warmup", train, dev)
    if run.copy_curriculum is not None:
        from wideseek.train.curriculum import copy_examples

        c = run.copy_curriculum
        train = list(copy_examples(tokenizer, world, "train"))
        if c.answers:
            from wideseek.train.curriculum import answer_examples

            trajectories = load_trajectories(run.trajectories)
            train += answer_examples(tokenizer, trajectories, run.roles)
        train = [e for e in train if len(e.input_ids) <= c.max_length]
        dev = list(copy_examples(tokenizer, world, "dev"))
        if c.answers and run.probe_trajectories:
            held_out = load_trajectories(run.probe_trajectories)
            dev += answer_examples(tokenizer, held_out, run.roles)
            random.Random(0).shuffle(dev)  # the probe's first examples mix both kinds
        model = _phase(run, model, c, "copy", train, dev)
    return model


def _evaluator(run: SFTRun, out: Path, max_length: int) -> Evaluate | None:
    """Probe and/or dev evaluation, merged into one metrics dict per evaluation."""
    parts: list[Callable[[str, int], dict[str, Any]]] = []
    if run.probe_trajectories:
        probe_set = _examples(run, run.probe_trajectories, max_length)[: run.probe_examples]
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


def run_sft(run: SFTRun, show_progress: bool = True) -> Path:
    """Warm-up (optional), then SFT with evaluations; returns the final model directory."""
    out = Path(run.out_dir)
    model = _pre_sft_phases(run)
    config = SFTConfig(**{**run.train, "model": model, "out_dir": str(out / "sft")})
    examples = _examples(run, run.trajectories, config.max_length)
    if not examples:
        raise RunError(
            f"no usable examples in {', '.join(run.trajectories)} (failed agents and ones "
            f"longer than max_length={config.max_length} are skipped)"
        )
    evaluate = _evaluator(run, out / "sft", config.max_length)
    return train_sft(config, examples, evaluate=evaluate, show_progress=show_progress)
