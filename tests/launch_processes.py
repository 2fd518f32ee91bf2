"""Start `torchrun` and its worker processes for a test, and never leave them behind.

`torchrun(args, timeout, env)` runs `python -m torch.distributed.run --standalone ARGS` in its own
process group and asserts it exits 0 (its stderr's tail as the message). `--standalone` finds a
free port for the rendezvous, where the default (29500) may be held by another run on the machine.
On a timeout the whole group is killed: `subprocess.run`'s own timeout kills only torchrun, and
the workers, stuck in a gloo collective, went on using the CPU after the test failed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys


def torchrun(args: list[str], timeout: float, env: dict[str, str]) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", *args]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,  # its own process group: the workers go with it
    )  # fmt: skip
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, stderr = proc.communicate()
        raise AssertionError(f"torchrun ran past {timeout:g} s: {stderr[-3000:]}") from None
    assert proc.returncode == 0, stderr[-3000:]
