"""A stand-in `wideseek` on PATH for the tests of the shell scripts: it appends its arguments
to a log, a line a call, then runs the Python `body` given (with `args`, the key=value
arguments, and `sys` at hand), so a test sees what a script asked for without running it."""

import os
import subprocess
import sys
from pathlib import Path

HEADER = """#!{python}
import json, pathlib, sys
with open({log!r}, "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
args = dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a and not a.startswith("-"))
"""

# the training scripts' stand-in: training makes its run directory, evaluations print their
# scores (the scripts keep them)
TRAINING_STAND_IN = """
if sys.argv[1:3] == ["train", "sft"]:
    pathlib.Path(args["out_dir"]).mkdir(parents=True, exist_ok=True)
if sys.argv[1:3] == ["train", "eval"]:
    print("{}")
"""


def stand_in_env(tmp_path: Path, body: str, **env: str) -> dict[str, str]:
    """The environment of a script run whose `wideseek` is the stand-in (calls: `calls()`)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "wideseek"
    header = HEADER.format(python=sys.executable, log=str(tmp_path / "calls"))
    fake.write_text(header + body)
    fake.chmod(0o755)
    path = f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return {**os.environ, "PATH": path, "WIDESEEK_CALLS": str(tmp_path / "calls"), **env}


def run_script(script: Path, env: dict[str, str], *args: str, cwd: Path | None = None):
    return subprocess.run(
        ["bash", str(script), *args], env=env, capture_output=True, text=True, cwd=cwd
    )


def calls(env: dict[str, str]) -> list[str]:
    log = Path(env["WIDESEEK_CALLS"])
    return log.read_text().splitlines() if log.exists() else []
