"""One step's rollouts sampled ahead, on their own event loop, while the learner trains.

Contract: `SamplingAhead(step, made, rollouts)` starts awaiting the coroutine `rollouts` (a
step's rollouts on a remote engine, `RLTrainer.rollouts`) at once, in a thread that runs its own
event loop (`asyncio.run`), and returns; the caller's thread goes on with the update, which
spends its time in torch, outside the GIL. `step` (0-based) and `made` (the version of the
weights sampling) say what it holds. `result()` waits for the trajectories (or raises what
the rollouts raised); `wait()` only waits; `cancel()` cancels the rollouts and waits for them
to stop (a run folder keeps what was finished: a rerun completes it).

The rollouts' agent logic stays asyncio, on one loop; the one thread only keeps that loop apart
from the learner's. The coroutine must not read state the learner changes meanwhile: the
trainer fixes tasks, seed, folder, version and engine before handing it over. It knows
threads and event loops, not training.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Coroutine
from typing import Any

from wideseek.types import Trajectory


class SamplingAhead:
    def __init__(
        self, step: int, made: int, rollouts: Coroutine[Any, Any, list[Trajectory]]
    ) -> None:
        self.step, self.made = step, made
        self.started = time.time()
        self._outcome: tuple[bool, Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(rollouts,), name=f"rl-rollouts-step-{step + 1}", daemon=True
        )
        self._thread.start()
        self._ready.wait()

    def _run(self, rollouts: Coroutine[Any, Any, list[Trajectory]]) -> None:
        async def main() -> list[Trajectory]:
            self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
            self._ready.set()
            return await rollouts

        try:
            self._outcome = (True, asyncio.run(main()))
        except BaseException as e:  # handed to the caller by result()
            self._outcome = (False, e)
        finally:
            self._ready.set()

    def wait(self) -> None:
        self._thread.join()

    def result(self) -> list[Trajectory]:
        self.wait()
        assert self._outcome is not None
        ok, value = self._outcome
        if not ok:
            raise value
        return value

    def cancel(self) -> None:
        if self._thread.is_alive() and self._loop is not None and self._task is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: it finished
                self._loop.call_soon_threadsafe(self._task.cancel)
        self.wait()
