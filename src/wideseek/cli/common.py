"""Shared CLI plumbing: the error boundary that turns user errors into one clear line."""

from __future__ import annotations

import sys

import click
import typer

from wideseek.config import ConfigError
from wideseek.llm.base import EngineError


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
    try:
        app(args=argv, standalone_mode=False)
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.exceptions.Abort:
        print("aborted", file=sys.stderr)
        return 130
    except Exception as e:
        if not isinstance(e, user_errors()):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
