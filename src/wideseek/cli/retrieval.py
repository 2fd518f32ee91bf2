"""`wideseek retrieval serve`: the retrieval service over a local JSONL corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wideseek.cli.common import command_group
from wideseek.errors import UsageError

app = command_group(help="Retrieval service (/retrieve, /access) over a local corpus.")


@app.command()
def serve(
    corpus: Annotated[Path, typer.Option(help="JSONL corpus of pages {id, url, title, text}.")],
    host: Annotated[str, typer.Option(help="Interface to bind (loopback by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port.")] = 8001,
    top_k: Annotated[int, typer.Option(help="Results per query when a request gives no topk.")] = 3,
) -> None:
    """Serve BM25 search and page access over a corpus (index cached next to it)."""
    from wideseek.tools.local_corpus import LocalCorpus

    try:
        from wideseek.tools.retrieval_server import serve as run_server
    except ImportError as e:
        raise UsageError(f"the retrieval server needs the [serve] extra ({e.name} missing)") from e
    backend = LocalCorpus(corpus)
    typer.echo(
        f"{len(backend.pages)} pages from {corpus}; serving on http://{host}:{port}", err=True
    )
    run_server(backend, host=host, port=port, top_k=top_k)
