"""`wideseek train sft` in two data-parallel CPU processes (torchrun, gloo): the code path of a
multi-GPU `accelerate launch`, checked on this machine."""

import asyncio
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer

from launch_processes import torchrun
from scripted_engine import ScriptedEngine
from test_orchestrator import TASK, responder, tools_for
from tiny_lm import make_tiny_lm
from wideseek.agents.orchestrator import Orchestrator
from wideseek.train.checkpoints import checkpoints
from wideseek.train.sft import make_batches
from wideseek.train.sft_data import trajectory_examples
from wideseek.types import read_trajectories, write_trajectories


def launch(config, processes: int) -> None:
    # torchrun starts the processes (accelerate launch --cpu would need mpirun); Accelerator
    # finds them from the environment, as it does under `accelerate launch --multi_gpu`
    args = ["--nproc_per_node", str(processes)]
    args += ["-m", "wideseek", "train", "sft", "--config", str(config), "--no-progress"]
    torchrun(args, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})


def read(root):
    return read_trajectories(root / "demos.jsonl")


def rows(out):
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def weights(model_dir):
    return load_file(model_dir / "model.safetensors")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    model = make_tiny_lm(root, max_positions=2048)
    orchestrator = Orchestrator(ScriptedEngine(responder=responder), tools_for)
    write_trajectories(root / "demos.jsonl", [asyncio.run(orchestrator.run(TASK))])
    return root, model


def write_config(root, model, name):
    # one agent's example per micro-batch: 3 batches an epoch, 9 in all -> 5 two-process steps
    train = {"epochs": 3, "lr": 3e-3, "warmup_steps": 1, "batch_tokens": 1300}
    train |= {"log_every": 1, "save_every": 2, "max_length": 2048}
    config = {
        "model": str(model),
        "out_dir": str(root / name),
        "trajectories": [str(root / "demos.jsonl")],
        "train": train,
    }
    path = root / f"{name}.yaml"
    path.write_text(json.dumps(config))
    return path


def test_two_processes_split_the_batches_and_resume_exactly(setup):
    root, model = setup
    launch(write_config(root, model, "two"), processes=2)
    out = root / "two" / "sft"
    logged = [r for r in rows(out) if "step" in r]
    assert [r["step"] for r in logged] == [1, 2, 3, 4, 5]  # logged once, by the main process
    # global micro-batch g = 2 * step + rank; tokens are summed over both processes
    examples = list(trajectory_examples(AutoTokenizer.from_pretrained(model), read(root), 2048))
    per_epoch = [make_batches(examples, 1300, seed) for seed in range(4)]
    lengths = [sum(len(examples[i].input_ids) for i in per_epoch[g // 3][g % 3]) for g in range(10)]
    assert logged[-1]["tokens_seen"] == sum(lengths)
    ckpt = checkpoints(out)[-1]
    assert {"random_states_0.pkl", "random_states_1.pkl"} <= {p.name for p in ckpt.iterdir()}

    # killed after checkpoint-2: the relaunch resumes there and ends with the same weights
    shutil.copytree(root / "two", root / "resumed")
    cut = root / "resumed" / "sft"
    shutil.rmtree(cut / "final")
    shutil.rmtree(cut / "checkpoint-4")
    config = write_config(root, model, "resumed")
    launch(config, processes=2)
    a, b = weights(out / "final"), weights(cut / "final")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["loss"] for r in rows(cut)] == [r["loss"] for r in logged]
    assert rows(cut)[-1]["tokens_seen"] == sum(lengths)

    # the same checkpoint under one process would take other batches: refused, not mixed
    shutil.rmtree(cut / "final")
    one = [sys.executable, "-m", "wideseek", "train", "sft", "--config", str(config)]
    refused = subprocess.run(one, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1 and "other data or batching" in refused.stderr
