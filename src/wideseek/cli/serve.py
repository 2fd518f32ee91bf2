"""`wideseek serve`: a local model behind an OpenAI-compatible server (llm/server.py).

With no `--model` it serves the engine `ask` and `eval` run by default (the small model shipped
with wideseek, or `$WIDESEEK_MODEL`), opened the same way they open it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from wideseek.cli import app
from wideseek.cli.common import note_default_engine
from wideseek.errors import UsageError
from wideseek.llm.engine import Engine


@app.command()
def serve(
    model: Annotated[
        Path | None,
        typer.Option(help="Hugging Face model directory; default: the shipped model."),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to bind (loopback unless told).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8000,
    name: Annotated[
        str | None, typer.Option("--served-model-name", help="Model id clients send.")
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="torch device for --model; default cuda if present.")
    ] = None,
) -> None:
    """Serve a model on /v1/models, /v1/chat/completions and /v1/completions.

    With no --model it serves the model `ask` and `eval` run by default: the small one shipped
    with wideseek.
    """
    try:
        from wideseek.llm.server import create_app
        from wideseek.serving import serve_app
    except ImportError as e:
        raise UsageError(f"the server needs the [serve] extra ({e.name} missing)") from e

    engine = _open_engine(model, device)
    if name:
        engine.model_name = name
    typer.echo(f"serving {engine.model_name!r} on http://{host}:{port}/v1", err=True)
    serve_app(create_app(engine), host=host, port=port)


def _open_engine(model: Path | None, device: str | None) -> Engine:
    if model is not None:
        from wideseek.llm.local import LocalEngine

        return LocalEngine(model, device=device)
    if device is not None:
        raise UsageError(
            "--device goes with --model DIR (the default model runs where `ask` runs it)"
        )
    from wideseek.config import load_config
    from wideseek.runtime import open_engine

    config = load_config(None, [])
    note_default_engine(config)
    return asyncio.run(open_engine(config))
