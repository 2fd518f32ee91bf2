"""SFT examples tokenised once per input: in parallel processes, then cached on disk.

Tokenising demonstrations (sft_data.py renders every conversation prefix through the chat
template) costs ~15 ms an example in one process: ~130 s for the default recipe's 5.8k
examples on the GPU machine, measured, before the first training step. So:
- `parallel_examples(tokenizer, trajectories, max_length, roles, workers)` tokenises in
  `workers` spawned processes (each is handed the tokenizer once; contiguous chunks, so the
  examples come back in the order one process gives them);
- `cached_examples(key, build)` returns the examples cached under `key` when a cache file for it
  exists, else `build()`'s, which it then writes. `ExampleKey.digest()` hashes the content of
  every trajectory file (in order), the tokenizer's files, `max_length`, `roles`, the agents
  pattern (`SFTRun.agents`, when set), this module's format and the transformers version: a
  changed input builds again. The file is `<cache_home>/sft-examples/<digest>.npz` (numpy
  arrays, no pickle), written atomically; an unreadable one is built again. A second run, or a
  resumed one, skips tokenising.
Role limits are applied by the caller after this (a seeded sample), so other limits reuse
the same cache. It knows tokenizers, trajectories and files, not models or training loops.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wideseek.io import atomic_writer, cache_home, file_sha256
from wideseek.train.sft_data import SFTExample, trajectory_examples
from wideseek.types import Trajectory

# Bump when sft_data.py builds different examples from the same inputs (2: in task order,
# sft_run.load_trajectories).
EXAMPLE_FORMAT = 2
# The files that define a tokenizer and its chat template (the ones present are hashed).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "vocab.json",
    "merges.txt",
)
# Below this many trajectories, starting processes costs more than it saves.
MIN_PARALLEL = 64


@dataclass(frozen=True)
class ExampleKey:
    """What the tokenised examples depend on."""

    trajectory_files: tuple[Path, ...]
    tokenizer_dir: Path
    max_length: int
    roles: tuple[str, ...]
    agents: str | None = None  # SFTRun.agents

    def digest(self) -> str:
        import transformers

        parts = {
            "format": EXAMPLE_FORMAT,
            "transformers": transformers.__version__,
            "trajectories": [file_sha256(p) for p in self.trajectory_files],
            "tokenizer": {
                name: file_sha256(self.tokenizer_dir / name)
                for name in TOKENIZER_FILES
                if (self.tokenizer_dir / name).is_file()
            },
            "max_length": self.max_length,
            "roles": list(self.roles),
            # only when set: the caches of runs made before it keep their digests
            **({"agents": self.agents} if self.agents is not None else {}),
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def cache_path(key: ExampleKey) -> Path:
    return cache_home() / "sft-examples" / f"{key.digest()}.npz"


def cached_examples(key: ExampleKey, build: Callable[[], list[SFTExample]]) -> list[SFTExample]:
    """The examples cached for `key`, else `build()`'s, cached (see the module docstring)."""
    path = cache_path(key)
    if path.is_file():
        try:
            return _read(path)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # a torn or foreign file: built again and replaced
    examples = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(path, examples)
    except OSError:
        pass  # a cache that cannot be written costs the next run time, not this one
    return examples


def default_workers() -> int:
    """Processes for tokenising: the CPUs this process may use, shared with the other
    processes of a data-parallel launch, at most 8."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    ranks = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
    return max(1, min(8, (cpus or 1) // max(ranks, 1)))


def parallel_examples(
    tokenizer: Any,
    trajectories: Sequence[Trajectory],
    max_length: int,
    roles: tuple[str, ...],
    workers: int | None = None,
) -> list[SFTExample]:
    """`trajectory_examples` over `workers` processes (None: `default_workers()`), in order."""
    workers = default_workers() if workers is None else workers
    if workers <= 1 or len(trajectories) < MIN_PARALLEL:
        return list(trajectory_examples(tokenizer, trajectories, max_length, roles))
    size = -(-len(trajectories) // (workers * 4))  # a few chunks a worker: even finishing
    chunks = [trajectories[i : i + size] for i in range(0, len(trajectories), size)]
    # spawn, not fork: the parent may hold torch and tokenizer threads that fork would copy
    # mid-flight
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, context, _init_worker, (tokenizer,)) as pool:
        parts = pool.map(_tokenise_chunk, chunks, [max_length] * len(chunks), [roles] * len(chunks))
        return [example for part in parts for example in part]


_worker_tokenizer: Any = None


def _init_worker(tokenizer: Any) -> None:
    global _worker_tokenizer
    _worker_tokenizer = tokenizer


def _tokenise_chunk(
    chunk: Sequence[Trajectory], max_length: int, roles: tuple[str, ...]
) -> list[SFTExample]:
    return list(trajectory_examples(_worker_tokenizer, chunk, max_length, roles))


# -- the cache file ----------------------------------------------------------------------------


def _write(path: Path, examples: list[SFTExample]) -> None:
    import numpy as np

    arrays = {
        "ids": np.array([t for e in examples for t in e.input_ids], dtype=np.int32),
        "labels": np.array([t for e in examples for t in e.labels], dtype=np.int32),
        "lengths": np.array([len(e.input_ids) for e in examples], dtype=np.int64),
        "roles": np.array([e.role for e in examples], dtype=str),
        "task_ids": np.array([e.task_id for e in examples], dtype=str),
    }
    with atomic_writer(path, binary=True) as f:
        np.savez(f, **arrays)


def _read(path: Path) -> list[SFTExample]:
    import numpy as np

    with np.load(path, allow_pickle=False) as data:
        lengths = data["lengths"]
        if int(lengths.sum()) != len(data["ids"]) or len(data["labels"]) != len(data["ids"]):
            raise ValueError(f"{path}: lengths do not add up")
        cuts = np.cumsum(lengths)[:-1]
        ids = np.split(data["ids"], cuts) if len(lengths) else []
        labels = np.split(data["labels"], cuts) if len(lengths) else []
        return [
            SFTExample(input_ids=x.tolist(), labels=y.tolist(), role=str(r), task_id=str(t))
            for x, y, r, t in zip(ids, labels, data["roles"], data["task_ids"], strict=True)
        ]
