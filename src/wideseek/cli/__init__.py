"""`wideseek` command line. Thin: each sub-command parses arguments and calls the library.

Each command group lives in its own module here and is registered below. Every error a user
can cause (a `wideseek.errors.WideseekError`: bad config, unreadable file, unreachable server,
broken model directory) ends in one line on stderr and a non-zero exit, never a traceback
(`common.run_cli`).
"""

from __future__ import annotations

import sys

from wideseek.cli.common import command_group, run_cli

app = command_group(
    name="wideseek",
    help="Broad information seeking: a lead agent splits a wide question, parallel subagents "
    "search and read, the lead assembles a markdown table.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Broad information seeking with a lead agent and parallel subagents."""


def _register() -> None:
    # Imported here so `wideseek --help` stays fast and a missing optional extra only breaks
    # the command that needs it.
    from wideseek.cli import commands  # noqa: F401


def main(argv: list[str] | None = None) -> None:
    _register()
    sys.exit(run_cli(app, argv))
