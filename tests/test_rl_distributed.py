"""The RL learner in two data-parallel CPU processes (torchrun, gloo): the code path of a
multi-GPU `accelerate launch`, checked on this machine. The same rollouts train the same
weights as in one process; only the main process writes; a killed run resumes exactly, and
with another process count as well.

Slow (seven torchrun launches, ~2 min on 2 busy cores): `python -m pytest -m slow
tests/test_rl_distributed.py -q`. Run as a script, this file is the worker torchrun starts:
`python -m torch.distributed.run --nproc_per_node 2 tests/test_rl_distributed.py CONFIG.json
train|one-sample`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from launch_processes import torchrun

WRITES = "writes-rank{rank}.json"  # beside the run's out_dir: what each process wrote in it


def signal(trainer) -> None:
    """Trial 0 of each group earns 1, the others 0: every group has a learning signal."""
    from wideseek.train.rl.rewards import CompositeReward, Term

    trainer.reward = CompositeReward(
        outcome=Term("outcome", lambda t, traj: float(traj.trial == 0))
    )


def record_writes(root: Path, writes: list[tuple[str, str]]) -> None:
    """Record every file or folder this process creates, writes, renames or deletes under
    `root`, from Python's audit events: our io, json and peft's config files, and the temporary
    folder and rename that every model, checkpoint state and final/ write goes through. (torch
    and safetensors write their files from C, unseen here: the RNG state that accelerate has
    each process save is checked by its presence.)"""
    root = root.resolve()
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND

    def under(path: object) -> str | None:
        if isinstance(path, int) or path is None:
            return None
        text = os.fsdecode(os.fspath(path))  # type: ignore[arg-type]
        full = Path(os.path.abspath(text))
        return str(full.relative_to(root)) if full.is_relative_to(root) else None

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writing = any(c in mode for c in "wax+") if mode else bool(flags & write_flags)
            touched = [path] if writing else []
        elif event in ("os.rename", "shutil.copyfile", "shutil.move"):
            touched = [args[1]]
        elif event in ("os.remove", "os.rmdir", "os.mkdir", "shutil.rmtree", "os.truncate"):
            touched = [args[0]]
        else:
            return
        for path in touched:
            relative = under(path)
            if relative is not None:
                writes.append((event, relative))

    sys.addaudithook(hook)


def one_sample_update(trainer) -> None:
    """An update on a single agent sample (B = 3): with two processes, the second one has no
    share and backpropagates a zero loss. The weights and figures go to out_dir/one-sample."""
    import torch

    from wideseek.train.rl.logprobs import sequence_logprobs
    from wideseek.train.rl.samples import AgentSample

    ids, mask = list(range(10, 40)), [False] * 20 + [True] * 10
    with torch.no_grad():  # on-policy: the sampler's logprobs are the policy's own
        old = sequence_logprobs(trainer.model, torch.tensor([ids]), 1.0)[0][0].tolist()
    row = trainer.update([([AgentSample(ids, mask, [0.0, *old], 0, "lead")], 1.0)], rollouts=3)
    if trainer.procs.main:
        out = trainer.out / "one-sample"
        trainer.write_model(out)
        (out / "row.json").write_text(json.dumps(row))
    trainer.procs.wait()


def worker(config_path: str, mode: str) -> None:
    """One process of a torchrun launch: the RL run of the config file, scripted rewards
    (`mode` train), or `one_sample_update`."""
    from wideseek.train.rl.config import RLConfig
    from wideseek.train.rl.trainer import RLTrainer

    cfg = RLConfig(**json.loads(Path(config_path).read_text()))
    out = Path(cfg.out_dir)
    rank = int(os.environ.get("RANK", "0"))
    writes: list[tuple[str, str]] = []
    record_writes(out, writes)
    trainer = RLTrainer(cfg, show_progress=False)
    signal(trainer)
    try:
        trainer.train() if mode == "train" else one_sample_update(trainer)
    finally:
        trainer.close()
    (out.parent / f"{out.name}-{WRITES.format(rank=rank)}").write_text(json.dumps(writes))


# -- the tests -----------------------------------------------------------------------------------


class Processes:
    """What LearnerProcesses reads of an Accelerator."""

    def __init__(self, count: int, index: int, kind: str = "MULTI_GPU") -> None:
        self.num_processes, self.process_index = count, index
        self.is_main_process, self.distributed_type = index == 0, kind


def test_shards_cover_every_sample_once_largest_first_to_the_least_loaded_process():
    from wideseek.train.rl.processes import LearnerProcesses

    sizes = [5, 1, 9, 3, 3, 7]
    shards = [LearnerProcesses(Processes(3, rank)).shard(sizes) for rank in range(3)]
    assert shards == [[2], [4, 5], [0, 1, 3]]  # loads 9, 10, 9
    assert LearnerProcesses(Processes(1, 0, "NO")).shard(sizes) == list(range(6))
    assert LearnerProcesses(Processes(4, 3)).shard([2, 1]) == []  # nothing left: a zero loss


def test_one_process_runs_from_main_itself_and_sharded_engines_are_refused():
    from wideseek.errors import WideseekError
    from wideseek.train.rl.processes import LearnerProcesses

    alone = LearnerProcesses(Processes(1, 0, "NO"))
    assert alone.from_main(lambda: 7) == 7 and alone.gather([1, 2]) == [1, 2]
    with pytest.raises(ZeroDivisionError):
        alone.from_main(lambda: 1 / 0)
    with pytest.raises(WideseekError, match="plain data parallel \\(DDP\\), not FSDP"):
        LearnerProcesses(Processes(2, 0, "FSDP"))


def launch(config: dict, processes: int, mode: str = "train") -> None:
    path = Path(config["out_dir"]).with_suffix(".json")
    path.write_text(json.dumps(config))
    args = ["--nproc_per_node", str(processes), __file__, str(path), mode]
    # CPU processes over gloo wherever the test runs (a GPU would make them NCCL ones); one
    # thread each, as the one-process reference, so the sampled tokens are the same
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    torchrun(args, timeout=600, env=env)


def rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def weights(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(model_dir / "adapter_model.safetensors")


def sampled(out: Path, step: int) -> list[list[int]]:
    """The token ids every agent of step `step`'s rollouts generated, in a fixed order."""
    from wideseek.types import read_trajectories

    found = read_trajectories(out / "rollouts" / f"step-{step}" / "trajectories.jsonl")
    found = sorted(found, key=lambda t: (t.task.id, t.trial))
    return [list(turn.response_token_ids or []) for t in found for _, turn in t.iter_turns()]


def writes_of(out: Path, rank: int) -> list[tuple[str, str]]:
    return [
        tuple(w)
        for w in json.loads((out.parent / f"{out.name}-writes-rank{rank}.json").read_text())
    ]


@pytest.mark.slow
def test_two_processes_train_as_one_only_the_main_one_writes_and_a_run_resumes(tmp_path):
    import torch

    from test_rl_trainer import AGENT
    from tiny_lm import make_tiny_lm

    model = make_tiny_lm(tmp_path / "lm", max_positions=4096)
    base = {
        "model": str(model), "dtype": "fp32", "lora": {"r": 4}, "suites": ["deep"],
        "tasks_per_step": 2, "group_size": 2, "steps": 2, "agent": AGENT, "lr": 1e-2,
        "guards": {"min_reward": None, "max_flat_groups": None}, "save_every": 1,
    }  # fmt: skip
    two = tmp_path / "two"
    launch({**base, "out_dir": str(two)}, processes=2)

    # 1) one process, same start, same rollouts: the same update (up to the order of sums)
    one = tmp_path / "one"
    launch({**base, "out_dir": str(one), "steps": 1}, processes=1)
    assert sampled(one, 1) == sampled(two, 1)
    a, b = weights(one / "checkpoint-1" / "model"), weights(two / "checkpoint-1" / "model")
    assert a.keys() == b.keys()
    # Adam's first step moves each weight by ~lr * sign(gradient) = 1e-2; where a gradient is
    # near Adam's eps the other order of the sums shows, ~1e-6 (measured)
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=0, atol=1e-5), key
    assert any(bool(a[k].abs().sum()) for k in a if "lora_B" in k)  # B starts at 0: it moved
    row_one, row_two = rows(one)[0], rows(two)[0]
    for key in ("trained_agents", "trained_tokens", "rollouts", "early_stopped"):
        assert row_one[key] == row_two[key], key
    assert row_one["trained_agents"] >= 4  # several samples: both processes had a share
    for key in ("loss", "grad_norm", "ratio_mean", "entropy", "clip_frac", "approx_kl"):
        assert row_two[key] == pytest.approx(row_one[key], rel=1e-4, abs=1e-7), key

    # 2) the main process alone writes; the other one makes sure that out_dir and each
    # checkpoint folder exist (accelerate's save_state, on every process) and saves its RNG
    assert [r["step"] for r in rows(two)] == [1, 2]  # one row a step: logged once
    main = {event for event, _ in writes_of(two, 0)}
    assert {"open", "os.rename", "os.mkdir"} <= main  # the recorder sees the writes
    other = set(writes_of(two, 1))
    assert other <= {("os.mkdir", "."), ("os.mkdir", "checkpoint-1"), ("os.mkdir", "checkpoint-2")}
    ckpt2 = two / "checkpoint-2"
    assert {"random_states_0.pkl", "random_states_1.pkl"} <= {p.name for p in ckpt2.iterdir()}

    # 3) killed after checkpoint-1: the relaunch resumes there and ends with the same weights
    resumed = tmp_path / "resumed"
    shutil.copytree(two, resumed)
    shutil.rmtree(resumed / "final")
    shutil.rmtree(resumed / "checkpoint-2")
    launch({**base, "out_dir": str(resumed)}, processes=2)
    a, b = weights(two / "final"), weights(resumed / "final")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["loss"] for r in rows(resumed)] == [r["loss"] for r in rows(two)]

    # 4) another process count resumes the same checkpoint: the rollouts are sampled by the
    # main process alone from the step's seed, so only the order of the gradient sums differs
    # (a process with no RNG state of its own in the checkpoint starts from its seed)
    for processes, name in ((1, "resumed-by-one"), (2, "one-resumed-by-two")):
        source = two if processes == 1 else one
        other = tmp_path / name
        shutil.copytree(source, other)
        for leftover in ("final", "checkpoint-2"):
            shutil.rmtree(other / leftover, ignore_errors=True)
        launch({**base, "out_dir": str(other)}, processes=processes)
        written = [path for _, path in writes_of(other, 0)]
        assert not [p for p in written if p.startswith("rollouts/step-1")]  # resumed at step 2
        assert any(p.startswith("rollouts/step-2") for p in written)
        assert sampled(other, 2) == sampled(two, 2)
        assert [r["step"] for r in rows(other)] == [1, 2]
        a, b = weights(two / "final"), weights(other / "final")
        assert all(torch.allclose(a[k], b[k], rtol=0, atol=1e-5) for k in a), name

    # 5) fewer samples than processes: the one without a share still joins the all-reduce
    launch({**base, "out_dir": str(tmp_path / "single-two")}, processes=2, mode="one-sample")
    launch({**base, "out_dir": str(tmp_path / "single-one")}, processes=1, mode="one-sample")
    a = weights(tmp_path / "single-one" / "one-sample")
    b = weights(tmp_path / "single-two" / "one-sample")
    assert all(torch.allclose(a[k], b[k], rtol=0, atol=1e-5) for k in a)
    row_one, row_two = (json.loads((tmp_path / d / "one-sample" / "row.json").read_text())
                        for d in ("single-one", "single-two"))  # fmt: skip
    assert row_two["trained_agents"] == 1 and row_two["loss"] == pytest.approx(row_one["loss"])
    assert row_two["grad_norm"] == pytest.approx(row_one["grad_norm"], rel=1e-4)


if __name__ == "__main__":
    worker(sys.argv[1], sys.argv[2])
