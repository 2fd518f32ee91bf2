"""`wideseek tools check`: can the web search and page access backends work from here?

For each backend named with `--search` / `--access` (default: the configured `tools.web.search`
and `tools.web.access`) it prints one line, `<name>: ok: ...` or `<name>: <what is wrong>`
(no key in its environment variable, the endpoint refusing or unreachable), after one real
request each (one try, no cache). Exit 1 if any failed. Settings come from `tools.web` of
`--config FILE` and `--set tools.web.<key>=<value>` (base URLs, key variable names); without a
`tools.web` section, the defaults. Key values are never printed.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from wideseek.cli.common import command_group
from wideseek.cli.options import (
    AccessBackendName,
    ConfigOpt,
    SearchBackendName,
    SetOpt,
    web_key_envs,
)
from wideseek.config import load_config
from wideseek.web_config import SEARCH_NAMES, WebToolsConfig

app = command_group(help="Web search and page access backends.", no_args_is_help=True)

SearchesOpt = Annotated[
    list[SearchBackendName] | None,
    typer.Option(
        "--search",
        help="a search API to check (repeatable). Keys come from the environment: "
        f"{web_key_envs(SEARCH_NAMES)}",
    ),
]
AccessesOpt = Annotated[
    list[AccessBackendName] | None,
    typer.Option(
        "--access",
        help="a page reader to check (repeatable); jina reads its optional key from "
        f"${WebToolsConfig().jina.key_env}",
    ),
]


@app.command("check")
def check(
    search: SearchesOpt = None,
    access: AccessesOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Check web backends: key set, endpoint answering one real request.

    Checks the --search and --access backends named, else the configured tools.web.search and
    tools.web.access. Prints one line per backend; exits 1 if any failed.
    """
    from wideseek.tools.web.backend import check_backends

    web = load_config(config, set_).tools.web or WebToolsConfig()
    named = [str(n) for n in [*(search or []), *(access or [])]]
    results = asyncio.run(check_backends(web, named or None))
    for name, _, line in results:
        typer.echo(f"{name}: {line.removeprefix(f'{name}: ')}")  # errors name it already
    if not all(ok for _, ok, _ in results):
        raise typer.Exit(1)
