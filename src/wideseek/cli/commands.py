"""Registers every command group on the root app. One import line per group."""

import typer

from wideseek import __version__
from wideseek.cli import app
from wideseek.cli import ask as _ask  # noqa: F401  (registers `wideseek ask`)
from wideseek.cli import eval as eval_cli
from wideseek.cli import report as _report  # noqa: F401  (registers `wideseek report`)
from wideseek.cli import retrieval as retrieval_cli
from wideseek.cli import score as _score  # noqa: F401  (registers `wideseek score`)
from wideseek.cli import serve as _serve  # noqa: F401  (registers `wideseek serve`)
from wideseek.cli import tools as tools_cli
from wideseek.cli import trace as trace_cli
from wideseek.cli import train as train_cli
from wideseek.cli.world import world_app


@app.command()
def version() -> None:
    """Print the wideseek version."""
    typer.echo(__version__)


app.add_typer(eval_cli.app, name="eval")
app.add_typer(retrieval_cli.app, name="retrieval")
app.add_typer(tools_cli.app, name="tools")
app.add_typer(trace_cli.app, name="trace")
app.add_typer(train_cli.app, name="train")
app.add_typer(world_app, name="world")
