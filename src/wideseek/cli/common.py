"""Shared CLI plumbing: the error boundary that turns user errors into one clear line."""

from __future__ import annotations

import sys

import typer

from wideseek.config import Config, ConfigError
from wideseek.llm.base import EngineError

try:  # recent typer runs on its own copy of click and no longer installs the click package
    from typer._click import exceptions as click_exceptions
except ImportError:  # older typer: click itself
    from click import exceptions as click_exceptions

# A command group run without arguments: its "error" is the help page, shown as is.
_NO_ARGS_HELP = getattr(click_exceptions, "NoArgsIsHelpError", ())


def note_default_engine(config: Config) -> None:
    """One dim line on stderr when the run uses the small shipped model, so nobody mistakes its
    scores for what the system does with a real model."""
    from wideseek.runtime import package_model_dir, uses_shipped_model

    if uses_shipped_model(config):
        card = package_model_dir() / "README.md"
        print(
            f"engine: the small model shipped with wideseek (its scores: {card}); "
            "give --engine URL or --model DIR for a real one",
            file=sys.stderr,
        )


class UserError(Exception):
    """An error the user can fix (bad path, bad flag value); printed as one line."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    UserError,
    ConfigError,
    EngineError,
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
)


def user_errors() -> tuple[type[BaseException], ...]:
    """USER_ERRORS plus the data errors of the library's parts, imported only when needed."""
    from wideseek.eval.widesearch_data import WideSearchDataError
    from wideseek.tools.local_corpus import CorpusError
    from wideseek.tools.retrieval_client import RetrievalError
    from wideseek.world.build import WorldError

    return (*USER_ERRORS, CorpusError, RetrievalError, WorldError, WideSearchDataError)


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
        if not isinstance(e, user_errors()):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 1
    return code if isinstance(code, int) else 0
