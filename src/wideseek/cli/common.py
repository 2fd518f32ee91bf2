"""Shared CLI plumbing: the error boundary that turns user errors into one clear line.

Every error a user can cause is a `wideseek.errors.WideseekError` (or an OS error on a path
they gave): `run_cli` prints it as one `error: ...` line and exits with its `exit_code`; usage
errors of the command line itself exit 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys

import typer

from wideseek.config import Config
from wideseek.errors import WideseekError

try:  # recent typer runs on its own copy of click and no longer installs the click package
    from typer._click import exceptions as click_exceptions
except ImportError:  # older typer: click itself
    from click import exceptions as click_exceptions


def command_group(**options) -> typer.Typer:
    """A Typer app (the root or a command group) with the help rendering every command shares:
    descriptions reflowed to the terminal (markdown), not printed with the docstring's breaks."""
    return typer.Typer(rich_markup_mode="markdown", **options)


# A command group run without arguments: its "error" is the help page, shown as is.
_NO_ARGS_HELP = getattr(click_exceptions, "NoArgsIsHelpError", ())


def note_default_engine(config: Config) -> None:
    """One dim line on stderr when the run uses the small shipped model, so nobody mistakes its
    scores for what the system does with a real model; one more with the local engine
    `engine.backend: auto` picked (torch or llama.cpp), and why."""
    from wideseek.runtime import local_backend, package_model_dir, uses_shipped_model

    if uses_shipped_model(config):
        card = package_model_dir() / "README.md"
        print(
            f"engine: the small model shipped with wideseek (its scores: {card}); "
            "give --engine URL or --model DIR for a real one",
            file=sys.stderr,
        )
    if config.engine.backend != "auto":
        return
    try:  # the local engine auto picks, and why; a model that cannot be read fails later
        choice = local_backend(config)
    except WideseekError:
        return
    if choice is not None:
        print(f"engine.backend auto → {choice.reason}", file=sys.stderr)


# Besides every WideseekError: a path the user gave that the OS refuses.
_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


def exit_code_of(error: BaseException) -> int | None:
    """The exit code of an error the user can fix, None for a bug (its traceback stays)."""
    if isinstance(error, WideseekError):
        return error.exit_code
    if isinstance(error, _OS_ERRORS):
        return 1
    return None


def run_cli(app: typer.Typer, argv: list[str] | None) -> int:
    """Run `app`; the exit code. Usage and user errors are one `error: ...` line on stderr."""
    try:
        # Outside standalone mode, `raise typer.Exit(n)` in a command comes back as n.
        code = app(args=argv, standalone_mode=False)
    except _NO_ARGS_HELP as e:
        e.show()
        return e.exit_code
    except click_exceptions.ClickException as e:  # bad flag, missing argument, no such command
        print(f"error: {' '.join(e.format_message().split())}", file=sys.stderr)
        return e.exit_code
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return 130
    except Exception as e:
        code = exit_code_of(e)
        if code is None:
            raise
        print(f"error: {e}", file=sys.stderr)
        return code
    return code if isinstance(code, int) else 0
