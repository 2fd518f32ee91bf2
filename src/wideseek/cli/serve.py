"""`wideseek serve`: a local model directory behind an OpenAI-compatible server (llm/server.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wideseek.cli import app
from wideseek.cli.common import UserError


@app.command()
def serve(
    model: Annotated[Path | None, typer.Option(help="Hugging Face model directory.")] = None,
    host: Annotated[str, typer.Option(help="Interface to bind (loopback unless told).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8000,
    name: Annotated[
        str | None, typer.Option("--served-model-name", help="Model id clients send.")
    ] = None,
    device: Annotated[str | None, typer.Option(help="torch device; default cuda if present.")] = (
        None
    ),
) -> None:
    """Serve a model on /v1/models, /v1/chat/completions and /v1/completions."""
    import uvicorn

    from wideseek.llm.local import LocalEngine
    from wideseek.llm.server import create_app

    if model is None:
        raise UserError("no model given: pass --model DIR (a Hugging Face model directory)")
    engine = LocalEngine(model, device=device, model_name=name)
    typer.echo(f"serving {engine.model_name!r} on http://{host}:{port}/v1", err=True)
    uvicorn.run(create_app(engine), host=host, port=port, log_level="warning")
