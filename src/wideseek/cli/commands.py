"""Registers every command group on the root app. One import line per group."""

import typer

from wideseek import __version__
from wideseek.cli import app
from wideseek.cli import score as _score  # noqa: F401  (registers `wideseek score`)


@app.command()
def version() -> None:
    """Print the wideseek version."""
    typer.echo(__version__)
