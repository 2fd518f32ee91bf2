"""The RL trainer's notes to the user: one `note: ...` line on stderr each.

Contract: `note(text)` prints `note: <text>` on stderr. For what the trainer decided on its own
and the user should know, though nothing failed: a run folder discarded, weights pushed to a
rollout server, a resume after a collapse, the tasks a pass-rate window kept. Errors are
exceptions (`WideseekError`), never notes.
"""

from __future__ import annotations

import sys


def note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr)
