"""The RL learner's processes: one (the main one) samples, scores and writes; all of them train.

Contract: `LearnerProcesses(accelerator)` stands for the N processes `accelerate launch` or
`torchrun` started (N = 1 without either: every call below is then the plain local one).
- `from_main(fn)`: `fn()` run by the main process only, its result sent to every process
  (`accelerate.utils.broadcast_object_list`). An exception there is raised by every process:
  the main one raises its own, the others a copy (or, when it cannot be pickled, a
  `RuntimeError` with its type and text), so none is left waiting for a result.
- `shard(sizes)`: the indices of the items this process trains on; the items are split over
  the processes by size, largest first, each to the least loaded one (ties to the lowest
  rank): every process computes the same split from the same sizes, nothing is sent.
- `gather(items)`: every process's list, concatenated in rank order, on every process
  (`accelerate.utils.gather_object`).
- `wait()`: a barrier; `main`, `index`, `count`.
Plain data parallel only (DDP, every process holding the whole model): FSDP, DeepSpeed and the
like are refused when the processes are made, since the main process writes the model alone.

Why the main process alone samples: the rollouts of a step go through the one world entry
into one run folder (resumable, stamped with the weights that made them), and a remote
engine gets each version pushed once; the other processes wait for the step's batch at
`from_main` (hence the long `WAIT_FOR_MAIN` timeout of the process group). Rollouts on a vLLM /
SGLang server (`rollout_engine`) take generation off the learner's devices altogether.
It knows processes and collectives, not rollouts, losses or checkpoints.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from wideseek.errors import WideseekError

T = TypeVar("T")
# How long a learner process waits at a collective for the main one: a whole step's rollouts
# (and a dev evaluation) on the main process, hours on a CPU; torch's default is 10-30 min.
WAIT_FOR_MAIN = timedelta(hours=24)


class LearnerProcesses:
    def __init__(self, accelerator: Any) -> None:
        sharded = {"FSDP", "DEEPSPEED", "MEGATRON_LM", "XLA"}
        kind = str(getattr(accelerator.distributed_type, "value", accelerator.distributed_type))
        if kind.upper() in sharded:
            raise WideseekError(
                f"the RL learner runs plain data parallel (DDP), not {kind}: the main process "
                "writes the whole model alone; launch without an FSDP / DeepSpeed config"
            )
        self.accelerator = accelerator
        self.count: int = accelerator.num_processes
        self.index: int = accelerator.process_index
        self.main: bool = accelerator.is_main_process

    def from_main(self, fn: Callable[[], T]) -> T:
        if self.count == 1:
            return fn()
        from accelerate.utils import broadcast_object_list

        payload: list[Any] = [None]
        if self.main:
            try:
                payload = [("ok", fn())]
            except Exception as e:
                broadcast_object_list([("error", _portable(e))])
                raise
        broadcast_object_list(payload)
        kind, value = payload[0]
        if kind == "error":
            raise value
        return value

    def shard(self, sizes: Sequence[int]) -> list[int]:
        loads = [0] * self.count
        mine: list[int] = []
        for i in sorted(range(len(sizes)), key=lambda i: (-sizes[i], i)):
            rank = min(range(self.count), key=lambda r: (loads[r], r))
            loads[rank] += sizes[i]
            if rank == self.index:
                mine.append(i)
        return sorted(mine)

    def gather(self, items: list[T]) -> list[T]:
        if self.count == 1:
            return items
        from accelerate.utils import gather_object

        return gather_object(items)

    def wait(self) -> None:
        self.accelerator.wait_for_everyone()


def _portable(error: Exception) -> Exception:
    """`error` if it survives pickling (the other processes raise it as it is), else a
    RuntimeError that says what it was."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"the main process failed: {type(error).__name__}: {error}")
    return error
