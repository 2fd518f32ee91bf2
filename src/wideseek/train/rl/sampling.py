"""The sampling side of an RL step: which weights sample, the step's rollouts, and its batch.

Contract: `StepSampling` is the part of `RLTrainer` (a base class of it; the attributes it
reads are declared below and set by the trainer) that runs on the main process only:
- `sample_step()`: steps 1-3 of the trainer's module docstring: the step's tasks
  (`task_selection.step_tasks`), their rollouts (or the ones sampled ahead during the last
  update), flat groups replaced (`replace_flat_groups`, with `select.resample_flat`), the
  rewards and advantages (`batch.build_batch`); returns the kept rollouts' (agent samples,
  advantage) pairs, B, and the step's figures that need no update. With `rollouts_ahead` it
  starts the next step's rollouts before returning (`sample_ahead`).
- `rollouts(tasks, run_dir, ...)`: an awaitable of G rollouts of each task through the one
  world entry (`runtime.world_run.run_world`), everything fixed when called.
- `sampler(staleness)`: the version that samples now; a remote engine lagging more than
  `staleness` updates gets the current weights pushed first (a refusal: `WeightPushError`).
- `_fresh_dir(path, settings, sampler, ...)`: a run folder reused only when the same settings
  and weights recent enough (`max_staleness`) made it; else discarded (one note) and stamped.
- `take_start_evaluation(run, run_dir, start)`: another run's step-0 dev evaluation copied in
  when the same start function (`start_function`: weights and dtype) and eval settings made it.
- `pass_rate_pool()`: the pool narrowed to `select.pass_rate`'s window, the start model's pass
  rates measured before step 1 (`measure_pass_rates`; or another run's of the same weights on
  the same world, `borrowed_pass_rates`)
  and read back, never re-measured, later; `narrow_pool()` makes it the pool the steps draw
  from (on every process, from the main one's reading), when a window is set.
Sampling is untruncated (top_p 1, no top-k): the update's logprobs are untruncated too. It
knows rollouts, run folders and engines; the update and checkpoints are the trainer's.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from wideseek.errors import WideseekError
from wideseek.eval.runner import RESULTS, TRAJECTORIES
from wideseek.io import atomic_write_text
from wideseek.llm.engine import Engine
from wideseek.llm.model_dir import weights_sha256
from wideseek.llm.resolved_model import resolve_model
from wideseek.train.rl.advantages import is_flat
from wideseek.train.rl.ahead import SamplingAhead
from wideseek.train.rl.batch import build_batch
from wideseek.train.rl.config import MEASURED, RLConfig, digest, settings_of
from wideseek.train.rl.metrics_row import rollout_figures
from wideseek.train.rl.notes import note
from wideseek.train.rl.remote import RemotePolicy
from wideseek.train.rl.rewards import CompositeReward
from wideseek.train.rl.task_selection import (
    PASS_RATES,
    PassRates,
    replacement_tasks,
    step_tasks,
)
from wideseek.train.rl.update import Batch
from wideseek.types import Task, Trajectory

if TYPE_CHECKING:
    from wideseek.llm.local import LocalEngine
    from wideseek.train.rl.llamacpp_sampler import LlamaCppSampler
    from wideseek.train.rl.merged_sampler import MergedSampler
    from wideseek.train.rl.processes import LearnerProcesses
    from wideseek.world.store import World

T = TypeVar("T")
STAMP = "policy.json"  # in a rollout / dev-eval folder: the weights and settings that made it


def _read_stamp(path: Path) -> Any:
    """A run folder's `STAMP` (None when missing or unreadable: the folder fits nothing)."""
    try:
        return json.loads((path / STAMP).read_text())
    except (OSError, ValueError):
        return None


class StepSampling:
    # set by RLTrainer
    config: RLConfig
    out: Path
    world: World
    show_progress: bool
    pool: list[Task]
    suite_of: dict[str, str]
    reward: CompositeReward
    step: int  # the learner's version
    history: dict[int, str]  # version -> policy id, recent ones
    rollout_settings: str
    eval_settings: str
    eval_alone: bool  # the dev evaluation decodes each request alone
    model: Any
    engine: LocalEngine | None
    merged: MergedSampler | None  # the engine's merged copy of a LoRA policy
    llama: LlamaCppSampler | None  # llama.cpp sampling, a GGUF copy of each version
    policy: str  # the learner's policy id
    remote: RemotePolicy | None
    ahead: SamplingAhead | None
    write_model: Callable[[Path], None]
    procs: LearnerProcesses

    # -- which weights sample ------------------------------------------------------------------

    def _fresh_dir(
        self,
        path: Path,
        settings: str,
        sampler: int,
        staleness: int = 0,
        learner: int | None = None,
        **facts: str,
    ) -> int:
        """Keep `path` (a run folder a resumed step finishes) only if these settings (a digest)
        and weights at most `staleness` versions older than the learner's (version `learner`,
        None: the current one) made it; else discard it, saying so, and stamp it as
        `sampler`'s (with `facts`, more that others may check). Returns the version that made
        it."""
        learner = self.step if learner is None else learner
        stamp = self._stamp(sampler, settings, **facts)
        if path.exists():
            made = _read_stamp(path)
            recent = {p: v for v, p in self.history.items() if learner - v <= staleness}
            fits = isinstance(made, dict) and made.get("settings") == settings
            if fits and made["policy"] in recent:
                return recent[made["policy"]]
            note(f"{path} was made by other weights or settings ({made} vs {stamp}); discarded")
            shutil.rmtree(path)
        path.mkdir(parents=True)
        atomic_write_text(path / STAMP, json.dumps(stamp))
        return sampler

    def _stamp(self, version: int, settings: str, **facts: str) -> dict[str, Any]:
        """What a run folder records of what made it (`STAMP`)."""
        return {"policy": self.history[version], "version": version, "settings": settings, **facts}

    def start_function(self) -> str:
        """What the start model computes: its weights and the dtype they run in (a new
        adapter's zero update changes nothing), whatever the seed or the path it is read from."""
        return digest(self.start_weights(), self.config.dtype)

    def take_start_evaluation(self, run: Path, run_dir: Path, start: dict[str, str]) -> None:
        """`run`'s step-0 dev evaluation copied to run_dir and stamped as this run's, when the
        same start function under the same eval settings made it; else a note (this run then
        evaluates its own). A copy cut short is finished here: the evaluation is seeded and
        decoded request by request, so the tasks left give what they would have there."""
        source = run / "dev-eval" / "step-0"
        made = _read_stamp(source)
        fits = isinstance(made, dict) and made.get("settings") == self.eval_settings
        if not (fits and made.get("start") == start["start"] and self.eval_alone):
            note(f"eval_start_in {run}: its step-0 evaluation does not fit this run; evaluating")
            return
        # the format figures (call validity, finished agents) are read from the trajectories
        if any(not (r.parent / TRAJECTORIES).is_file() for r in source.glob(f"*/{RESULTS}")):
            note(f"eval_start_in {run}: its step-0 evaluation was kept without its "
                 f"trajectories ({TRAJECTORIES}); evaluating")  # fmt: skip
            return
        shutil.copytree(source, run_dir)
        atomic_write_text(run_dir / STAMP, json.dumps(self._stamp(0, self.eval_settings, **start)))
        note(f"the start model's dev evaluation taken from {source}")

    def sampler(self, staleness: int) -> int:
        """The version of the weights that samples now, at most `staleness` updates behind the
        learner: the learner's own model, or a remote engine that gets the current weights
        pushed when it lags more. A refused push is `WeightPushError`."""
        if self.remote is None:
            return self.step
        served = self.remote.served
        if served is None or self.step - served > staleness:
            started = time.time()
            self.model.eval()
            self.remote.push(self.step, self.write_model)
            note(f"pushed version {self.step} to {self.remote.settings.base_url} "
                 f"({time.time() - started:.1f}s)")  # fmt: skip
        assert self.remote.served is not None
        return self.remote.served

    def _with_engine(
        self, run: Callable[[Engine], Coroutine[Any, Any, T]]
    ) -> Coroutine[Any, Any, T]:
        """`run(engine)` with the sampling engine, chosen now: the shared local one, llama.cpp on
        the current version's GGUF copy, or an HTTP engine on the version served now, closed
        after in the event loop that awaits it."""
        if self.llama is not None:  # a GGUF copy of this version, written when it changed
            return run(self.llama.engine(self.policy))
        if self.remote is None:
            assert self.engine is not None
            if self.merged is not None and self.merged.sync(self.policy):
                self.engine.weights_changed()  # the copy holds this step's weights now
            return run(self.engine)
        engine = self.remote.engine()

        async def closing() -> T:
            async with engine:
                return await run(engine)

        return closing()

    # -- the step's rollouts -------------------------------------------------------------------

    def rollouts(
        self,
        tasks: Sequence[Task],
        run_dir: Path,
        *,
        trials: int | None = None,
        seed: int | None = None,
        suite: str | None = None,
        version: int | None = None,
        step: int | None = None,
    ) -> Coroutine[Any, Any, list[Trajectory]]:
        """`trials` rollouts (None: group_size) of each task into `run_dir` by the weights of
        `version` (None: the learner's; a remote engine must serve them), for step `step`
        (0-based; None: the current one), sampling with `seed` (None: the step's), through the
        one world entry (`runtime.world_run.run_world`) under the limits a dev evaluation
        takes (the run file's `agent` section, then the model's recommendation, then
        EVAL_LIMITS), so the policy trains under the limits it is scored under.
        Everything is fixed when called; the awaitable reads no trainer state (it may run on
        another thread's loop, `ahead.SamplingAhead`)."""
        from wideseek.runtime.world_run import NO_FLAGS, run_world

        step = self.step if step is None else step
        # top_p 1, top_k 0 whatever the model's generation config says (a vLLM or SGLang server
        # would take its top_k from there): the update computes untruncated
        # logprobs, so truncated sampling would make every importance ratio wrong
        agent = self.config.agent.model_copy(
            update={"mode": self.config.mode, "temperature": self.config.temperature,
                    "seed": self.config.seed + step if seed is None else seed,
                    "top_p": 1.0, "top_k": 0}
        )  # fmt: skip
        if self.engine is not None:
            self.model.eval()  # the local engine samples with the learner's own model
        version = self.step if version is None else version
        extra = {"policy_version": version, "policy": self.history[version]}

        async def run(engine: Engine) -> list[Trajectory]:
            done = await run_world(
                self.world, {"rollouts": list(tasks)}, run_dir, split=self.config.split,
                name=suite or f"rl-step-{step + 1}", agent=agent, limits=NO_FLAGS,
                engine=engine, config=None, trials=trials or self.config.group_size,
                concurrency=self.config.concurrency, extra=extra,
                show_progress=self.show_progress,
            )  # fmt: skip
            return done.trajectories()

        return self._with_engine(run)

    def step_tasks(self, step: int) -> list[Task]:
        """The tasks of `step` (0-based; task_selection.step_tasks)."""
        cfg = self.config
        by_suite = self.suite_of if cfg.select.balance_suites else None
        return step_tasks(self.pool, step, cfg.tasks_per_step, cfg.seed, by_suite)

    def sample_step(self) -> tuple[Batch, int, dict[str, Any]]:
        """Steps 1-3 (the main process): the kept rollouts' (agent samples, advantage) pairs,
        B, and the step's figures that need no update."""
        cfg = self.config
        tasks = self.step_tasks(self.step)
        run_dir = self.out / "rollouts" / f"step-{self.step + 1}"
        started = time.time()
        ahead, self.ahead = self.ahead, None
        if ahead is not None and ahead.step == self.step:  # sampled during the last update
            trajectories, made = ahead.result(), ahead.made
        else:
            sampler = self.sampler(cfg.max_staleness)
            made = self._fresh_dir(run_dir, self.rollout_settings, sampler, cfg.max_staleness)
            # a reused folder made by older weights is finished by the current sampler: every
            # trajectory carries its own sampling logprobs, so the ratios stay right either way
            trajectories = asyncio.run(self.rollouts(tasks, run_dir, version=sampler))
        resampling: dict[str, int] = {}
        if cfg.select.resample_flat:
            trajectories, resampling = self.replace_flat_groups(tasks, trajectories, run_dir)
        rollout_s = time.time() - started  # the learner's wait: with rollouts_ahead, the rest
        batch = build_batch(trajectories, self.reward, cfg.credit, lambda t: self.suite_of[t.id])
        if cfg.rollouts_ahead and self.step + 1 < cfg.steps:
            self.ahead = self.sample_ahead(self.step + 1)
        pairs = [(r.samples, r.advantage) for r in batch.kept]
        figures = {
            **rollout_figures(batch, self.step, cfg.suites, self.reward.names()),
            "staleness": self.step - made,
            **resampling,
            "rollout_s": round(rollout_s, 2),
        }
        return pairs, batch.batch_size(cfg.normalise_over), figures

    def sample_ahead(self, step: int) -> SamplingAhead:
        """Step `step`'s rollouts (0-based: the next one) started now on the remote engine, to
        sample while the current step's update runs. They are trained on by version `step`, so
        the server must serve a version at most `max_staleness` behind it: the current weights
        are pushed now if it lags more (nothing is in flight then: this step's rollouts are in,
        the next ones not started)."""
        cfg = self.config
        sampler = self.sampler(cfg.max_staleness - 1)
        run_dir = self.out / "rollouts" / f"step-{step + 1}"
        made = self._fresh_dir(run_dir, self.rollout_settings, sampler, cfg.max_staleness, step)
        tasks = self.step_tasks(step)
        return SamplingAhead(step, made, self.rollouts(tasks, run_dir, version=sampler, step=step))

    def flat(self, group: Sequence[Trajectory]) -> bool:
        """Every rollout of the group got the same reward: its advantages are all 0."""
        return is_flat([self.reward(t.task, t) for t in group])

    def replace_flat_groups(
        self, tasks: Sequence[Task], trajectories: list[Trajectory], run_dir: Path
    ) -> tuple[list[Trajectory], dict[str, int]]:
        """The step's groups with its flat ones replaced by other tasks' non-flat groups, at
        most `select.resample_flat` replacement groups tried, in rounds of one candidate for
        each flat group left (of its suite, with `balance_suites`: a step keeps its mix)
        (trainer module docstring, step 2); and the counts for the metrics."""
        groups: dict[str, list[Trajectory]] = {t.id: [] for t in tasks}
        for trajectory in trajectories:
            groups[trajectory.task.id].append(trajectory)
        flat = [task_id for task_id, group in groups.items() if self.flat(group)]
        candidates = replacement_tasks(self.pool, set(groups), self.step, self.config.seed)
        limit = min(self.config.select.resample_flat, len(candidates))
        same_suite = self.config.select.balance_suites
        used: set[str] = set()

        def next_candidate(target: str) -> Task | None:
            """The first untried candidate for the flat group `target` (of its suite)."""
            fits = (c for c in candidates if c.id not in used)
            if same_suite:
                fits = (c for c in fits if self.suite_of[c.id] == self.suite_of[target])
            return next(fits, None)

        tried = replaced = rounds = 0
        while flat and tried < limit:
            pairs: list[tuple[str, Task]] = []  # (flat group, the candidate tried for it)
            for target in flat[: limit - tried]:
                if (pick := next_candidate(target)) is not None:
                    used.add(pick.id)
                    pairs.append((target, pick))
            if not pairs:  # no candidate of a flat group's suite is left
                break
            tried, rounds = tried + len(pairs), rounds + 1
            version = self.sampler(self.config.max_staleness)
            chosen = [task for _, task in pairs]
            new = asyncio.run(
                self.rollouts(chosen, run_dir / f"resample-{rounds}", version=version)
            )
            for target, task in pairs:
                group = [t for t in new if t.task.id == task.id]
                if not self.flat(group):
                    del groups[target]
                    flat.remove(target)
                    groups[task.id] = group
                    replaced += 1
        kept = [t for group in groups.values() for t in group]
        return kept, {"resampled_groups": tried, "replaced_groups": replaced}

    # -- the task pool -------------------------------------------------------------------------

    def narrow_pool(self) -> None:
        """The steps draw from `select.pass_rate`'s window, when one is set."""
        if self.config.select.pass_rate is not None:
            self.pool = self.procs.from_main(self.pass_rate_pool)

    def pass_rate_pool(self) -> list[Task]:
        """The pool narrowed to `select.pass_rate`'s window. The rates are the start model's:
        measured at step 0 unless this run measured them already under the same settings, and
        read back, never re-measured, once training has begun."""
        window = self.config.select.pass_rate
        assert window is not None
        world = self.world.manifest.world_hash
        settings = digest(settings_of(self.config, include=MEASURED), window.samples, world)
        rates = PassRates.read(self.out)
        if self.step == 0:
            if window.measured_in is not None:
                rates = self.borrowed_pass_rates(Path(window.measured_in))
                rates.write(self.out)  # the run keeps the rates it trained on
            elif rates is None or rates.settings != settings or rates.missing(self.pool):
                rates = self.measure_pass_rates(settings, window.samples)
        elif rates is None or rates.missing(self.pool):
            missing = "none" if rates is None else ", ".join(rates.missing(self.pool)[:3])
            raise WideseekError(
                f"{self.out / PASS_RATES}: the start model's pass rates (measured before step 1) "
                f"are missing for {missing}; this run is at step {self.step} and cannot measure "
                "them again: use a new out_dir, or drop select.pass_rate"
            )
        kept = rates.in_window(self.pool, window)
        spread = f" or spread by {window.min_spread}" if window.min_spread is not None else ""
        suites = Counter(self.suite_of[t.id] for t in kept)
        by_suite = ", ".join(f"{suite} {n}" for suite, n in suites.items())
        note(
            f"{len(kept)} of {len(self.pool)} tasks ({by_suite}) "
            f"solved within [{window.min}, {window.max}]{spread} of {rates.samples} rollouts by "
            f"the start model ({self.out / PASS_RATES})"
        )
        if not kept:
            raise WideseekError(
                f"select.pass_rate: no task in the window [{window.min}, {window.max}] (see "
                f"{self.out / PASS_RATES}); widen it or choose other tasks"
            )
        return kept

    def measure_pass_rates(self, settings: str, samples: int) -> PassRates:
        """`samples` rollouts of every pool task by the current (start) weights, into
        out_dir/pass-rate/ (a crash resumes it), their outcomes into out_dir/pass-rates.json."""
        run_dir = self.out / "pass-rate"
        self._fresh_dir(run_dir, settings, self.sampler(0))
        note(f"measuring the start model's pass rate on {len(self.pool)} tasks x {samples}")
        # a seed no step uses (steps sample with seed + step, step >= 0)
        seed = self.config.seed - 1
        run = self.rollouts(self.pool, run_dir, trials=samples, seed=seed, suite="rl-pass-rate")
        outcomes: dict[str, list[float]] = defaultdict(list)
        for trajectory in asyncio.run(run):
            outcomes[trajectory.task.id].append(self.reward.outcome.fn(trajectory.task, trajectory))
        rates = PassRates(
            settings=settings,
            samples=samples,
            outcomes=dict(outcomes),
            model=self.config.model,
            weights=self.start_weights(),
            world=self.world.manifest.world_hash,
        )
        rates.write(self.out)
        return rates

    def start_weights(self) -> str:
        return weights_sha256(resolve_model(self.config.model).dir)

    def borrowed_pass_rates(self, run_dir: Path) -> PassRates:
        """`select.pass_rate.measured_in`'s measurement, checked to be of this run's start
        model and to cover its pool."""
        where = f"select.pass_rate.measured_in {run_dir}"
        rates = PassRates.read(run_dir)
        if rates is None:
            raise WideseekError(f"{where}: no {PASS_RATES} there; run the measuring run first")
        # the weights decide (a committed measurement read from another checkout names the
        # same model by another path); a measurement without their digest, the path
        same = (
            rates.weights == self.start_weights()
            if rates.weights
            else (rates.model == self.config.model)
        )
        if not same:
            raise WideseekError(
                f"{where}: measured on other weights (model {rates.model!r}) than this run "
                f"starts from ({self.config.model!r})"
            )
        world = self.world.manifest.world_hash
        if rates.world != world:  # other pages answer otherwise; None: an older measurement
            raise WideseekError(
                f"{where}: measured on world {(rates.world or 'not recorded')[:16]}, this run "
                f"plays on {world[:16]}; measure the pass rates again on this world"
            )
        missing = rates.missing(self.pool)
        if missing:
            raise WideseekError(f"{where}: no rates for {', '.join(missing[:3])} of this pool")
        note(f"the start model's pass rates as {run_dir / PASS_RATES} measured them")
        return rates
