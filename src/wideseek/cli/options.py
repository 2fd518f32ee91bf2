"""Options shared by the commands that run agents (`ask`, `eval ...`), and how they map to Config.

Every flag is a shorthand for a config key; `--config FILE` and `--set key=value` reach the rest
(for example `--set agent.lead_turns=4`). `--search NAME` / `--access NAME` set
`tools.web.search` / `tools.web.access`, which turns on real web search (`wideseek.tools.web`)
in place of the corpus; the other of the two keeps its default.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, get_type_hints

import typer

from wideseek.config import Config, load_config
from wideseek.errors import UsageError
from wideseek.eval.judge_client import ChatCompleter
from wideseek.eval.judges import Judge, LLMJudge, OfflineJudge
from wideseek.io import cache_home
from wideseek.profiles import PROFILES
from wideseek.web_config import ACCESS_NAMES, SEARCH_NAMES, WebToolsConfig

Mode = Literal["multi", "single"]
# The choices of --profile: every profile in wideseek.profiles, nothing listed twice.
Profile = StrEnum("Profile", {name: name for name in PROFILES})  # type: ignore[misc]
DEFAULT_PROFILE = Profile("wideseek")
# The choices of --search / --access: every backend wideseek.tools.web knows.
SearchBackendName = StrEnum("SearchBackendName", {n: n for n in SEARCH_NAMES})  # type: ignore[misc]
AccessBackendName = StrEnum("AccessBackendName", {n: n for n in ACCESS_NAMES})  # type: ignore[misc]


def web_key_envs(names: tuple[str, ...]) -> str:
    """ "serper $SERPER_API_KEY, ...": where the backends of `names` read their keys (defaults;
    tools.web.<name>.key_env names another variable)."""
    web = WebToolsConfig()
    envs = [(n, web.service(n).key_env) for n in names if n != "direct"]
    return ", ".join(f"{n} ${env}" for n, env in envs if env)


ModeOpt = Annotated[
    Mode | None, typer.Option("--mode", help="multi: lead + parallel subagents; single: one agent")
]
SubagentsOpt = Annotated[
    int | None,
    typer.Option("--subagents", min=1, help="most subagents per lead call (default: 10)"),
]
EngineOpt = Annotated[
    str | None,
    typer.Option("--engine", help="OpenAI-compatible server URL (vLLM, SGLang, OpenAI, ...)"),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", help="model name on the server, or a local model dir (default: shipped model)"
    ),
]
TokenizerOpt = Annotated[
    str | None,
    typer.Option("--tokenizer", help="tokenizer dir: use the server's token path (exact ids)"),
]
CorpusOpt = Annotated[
    Path | None,
    typer.Option("--corpus", help="JSONL corpus to search (default: the bundled offline world)"),
]
RetrievalOpt = Annotated[
    str | None, typer.Option("--retrieval", help="retrieval service URL instead of a corpus")
]
ProfileOpt = Annotated[
    Profile | None, typer.Option("--profile", help="tool names, schemas and call rules")
]
LenientTablesOpt = Annotated[
    bool,
    typer.Option(
        help="read a bare carriage return in a table cell as a space; departs from the "
        "official scorer, which fails to parse such tables (score 0)"
    ),
]
SEARCH_HELP = (
    "search the real web with this API instead of a corpus (turns on tools.web). Keys come "
    f"from the environment: {web_key_envs(SEARCH_NAMES)}; searxng is self-hosted (set "
    "tools.web.searxng.base_url). `wideseek tools check` tests them."
)
ACCESS_HELP = (
    "read pages with this reader (turns on tools.web; default: jina): jina is the Jina Reader "
    f"service (key ${WebToolsConfig().jina.key_env}, optional: a lower rate limit without); "
    "direct fetches pages from this machine."
)
SearchOpt = Annotated[SearchBackendName | None, typer.Option("--search", help=SEARCH_HELP)]
AccessOpt = Annotated[AccessBackendName | None, typer.Option("--access", help=ACCESS_HELP)]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="YAML config file")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="config override key=value (repeatable), e.g. agent.lead_turns=4"),
]


def build_config(
    *,
    mode: ModeOpt = None,
    subagents: SubagentsOpt = None,
    engine: EngineOpt = None,
    model: ModelOpt = None,
    tokenizer: TokenizerOpt = None,
    corpus: CorpusOpt = None,
    retrieval: RetrievalOpt = None,
    profile: ProfileOpt = None,
    search: SearchOpt = None,
    access: AccessOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> Config:
    """The config file, then `--set` overrides, then the explicit flags (which win). Its
    parameters are the run flags (`with_run_config`), in --help order."""
    flags = {
        "agent.mode": mode,
        "agent.max_subagents": subagents,
        "agent.profile": profile,
        "engine.base_url": engine,
        "engine.model": model,
        "engine.tokenizer": tokenizer,
        "tools.corpus": str(corpus) if corpus else None,
        "tools.retrieval_url": retrieval,
        "tools.web.search": search,  # either one turns tools.web on
        "tools.web.access": access,
    }
    given = {k: v for k, v in flags.items() if v is not None}  # typed: not re-read as YAML
    return load_config(config, set_, given)


def flags_of(
    build: Callable[..., Any], leave_out: tuple[str, ...] = ()
) -> dict[str, tuple[Any, Any]]:
    """`build`'s parameters as `flag_group` flags, name -> (annotation, default), less
    `leave_out`: a function whose typed signature declares the flags it builds from."""
    hints = get_type_hints(build, include_extras=True)
    params = inspect.signature(build).parameters.values()
    return {p.name: (hints[p.name], p.default) for p in params if p.name not in leave_out}


def flag_group(
    flags: dict[str, Any], build: Callable[..., Any], into: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator that gives a typer command a group of shared flags, built into one value.

    The command declares its own options plus a parameter named `into`; the wrapper's
    signature (what typer reads) swaps that parameter for `flags`, and passes
    `build(**flag_values)` in its place.
    """

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        own = inspect.signature(command)
        hints = get_type_hints(command, include_extras=True)
        params = [p.replace(annotation=hints[p.name]) for p in own.parameters.values()]
        params = [p for p in params if p.name != into] + [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=a)
            for name, (a, default) in flags.items()
        ]

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            values = {name: kwargs.pop(name) for name in flags}
            return command(**{into: build(**values)}, **kwargs)

        wrapper.__signature__ = own.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper

    return decorate


# `cfg: Config` for the commands that run agents.
with_run_config = flag_group(flags_of(build_config), build_config, "cfg")


# --- the judge of WideSearch scoring (`score`, `eval`) ------------------------------------------
JUDGE_CACHE_NAME = "judge-cache.sqlite"  # under wideseek's cache root (io.cache_home)
JudgeKind = Literal["offline", "llm"]
JudgeOpt = Annotated[
    JudgeKind, typer.Option("--judge", help="offline: deterministic, no network; llm: a model")
]
JudgeModelOpt = Annotated[
    str | None,
    typer.Option(envvar="WIDESEEK_JUDGE_MODEL", help="judge model name (--judge llm)"),
]
JudgeBaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        envvar="WIDESEEK_JUDGE_BASE_URL",
        help="judge server, e.g. http://127.0.0.1:8000/v1 (--judge llm)",
    ),
]
JudgeApiKeyEnvOpt = Annotated[str, typer.Option(help="env variable with the judge's API key")]
JudgeCacheOpt = Annotated[
    Path | None,
    typer.Option(
        help=f"judge reply cache, sqlite (default: {JUDGE_CACHE_NAME} in the cache root, "
        "$WIDESEEK_CACHE or ~/.cache/wideseek)"
    ),
]
JudgeConcurrencyOpt = Annotated[int, typer.Option(min=1, help="judge calls in flight")]


def build_judge(
    judge: JudgeOpt = "offline",
    judge_model: JudgeModelOpt = None,
    judge_base_url: JudgeBaseUrlOpt = None,
    judge_api_key_env: JudgeApiKeyEnvOpt = "OPENAI_API_KEY",
    judge_cache: JudgeCacheOpt = None,
    judge_concurrency: JudgeConcurrencyOpt = 8,
) -> tuple[Judge, ChatCompleter | None]:
    """The judge, and the HTTP completer to close afterwards (None for the offline judge). Its
    parameters are the judge flags (`with_judge`)."""
    if judge == "offline":
        return OfflineJudge(), None
    if not judge_model or not judge_base_url:
        raise UsageError("--judge llm needs --judge-model and --judge-base-url")
    completer = ChatCompleter(
        judge_model,
        judge_base_url,
        api_key_env=judge_api_key_env,
        cache_path=judge_cache or cache_home() / JUDGE_CACHE_NAME,
        max_concurrency=judge_concurrency,
    )
    return LLMJudge(completer), completer


# `judge: tuple[Judge, ChatCompleter | None]` for the commands that score tables.
with_judge = flag_group(flags_of(build_judge), build_judge, "judge")
