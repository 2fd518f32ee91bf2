"""Registers every command group on the root app. One import line per group."""

import typer

from wideseek import __version__
from wideseek.cli import app
from wideseek.cli.world import world_app


@app.command()
def version() -> None:
    """Print the wideseek version."""
    typer.echo(__version__)


app.add_typer(world_app, name="world")
