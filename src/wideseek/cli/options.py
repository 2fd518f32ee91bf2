"""Options shared by the commands that run agents (`ask`, `eval ...`), and how they map to Config.

Every flag is a shorthand for a config key; `--config FILE` and `--set key=value` reach the rest
(for example `--set agent.lead_turns=4`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_type_hints

import typer

from wideseek.cli.common import UserError
from wideseek.config import Config, load_config

if TYPE_CHECKING:
    from wideseek.eval.judge_client import ChatCompleter
    from wideseek.eval.judges import Judge

Mode = Literal["multi", "single"]
Profile = Literal["wideseek", "wideseek-r1"]

ModeOpt = Annotated[
    Mode | None, typer.Option("--mode", help="multi: lead + parallel subagents; single: one agent")
]
SubagentsOpt = Annotated[
    int | None, typer.Option("--subagents", min=1, help="most subagents per lead call [10]")
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
    Profile | None, typer.Option("--profile", help="tool names/schemas: wideseek | wideseek-r1")
]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="YAML config file")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="config override key=value (repeatable), e.g. agent.lead_turns=4"),
]


def build_config(
    config: Path | None,
    overrides: list[str] | None,
    *,
    mode: str | None = None,
    subagents: int | None = None,
    engine: str | None = None,
    model: str | None = None,
    tokenizer: str | None = None,
    corpus: Path | None = None,
    retrieval: str | None = None,
    profile: str | None = None,
) -> Config:
    """The config file, then `--set` overrides, then the explicit flags (which win)."""
    flags = {
        "agent.mode": mode,
        "agent.max_subagents": subagents,
        "agent.profile": profile,
        "engine.base_url": engine,
        "engine.model": model,
        "engine.tokenizer": tokenizer,
        "tools.corpus": str(corpus) if corpus else None,
        "tools.retrieval_url": retrieval,
    }
    extra = [f"{k}={v}" for k, v in flags.items() if v is not None]
    return load_config(config, [*(overrides or []), *extra])


# The flags every agent-running command takes, in --help order: name -> annotation.
_RUN_FLAGS: dict[str, Any] = {
    "mode": ModeOpt,
    "subagents": SubagentsOpt,
    "engine": EngineOpt,
    "model": ModelOpt,
    "tokenizer": TokenizerOpt,
    "corpus": CorpusOpt,
    "retrieval": RetrievalOpt,
    "profile": ProfileOpt,
    "config": ConfigOpt,
    "set_": SetOpt,
}


def with_run_config(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give a typer command the shared agent/engine/tool flags; it receives them as `cfg`.

    The command declares its own options plus a `cfg: Config` parameter; the wrapper's
    signature (what typer reads) swaps `cfg` for the flags above, and builds the Config.
    """
    own = inspect.signature(command)
    hints = get_type_hints(command, include_extras=True)
    params = [p.replace(annotation=hints[p.name]) for p in own.parameters.values()]
    params = [p for p in params if p.name != "cfg"] + [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ann)
        for name, ann in _RUN_FLAGS.items()
    ]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        flags = {name: kwargs.pop(name) for name in _RUN_FLAGS}
        config, overrides = flags.pop("config"), flags.pop("set_")
        return command(cfg=build_config(config, overrides, **flags), **kwargs)

    wrapper.__signature__ = own.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper


# --- the judge of WideSearch scoring (`score`, `eval`) ------------------------------------------
DEFAULT_JUDGE_CACHE = Path.home() / ".cache" / "wideseek" / "judge-cache.sqlite"
JudgeKind = Literal["offline", "llm"]
JudgeOpt = Annotated[
    JudgeKind, typer.Option("--judge", help="offline: deterministic, no network; llm: a model")
]
JudgeModelOpt = Annotated[str | None, typer.Option(help="judge model name (--judge llm)")]
JudgeBaseUrlOpt = Annotated[
    str | None, typer.Option(help="judge server, e.g. http://127.0.0.1:8000/v1 (--judge llm)")
]
JudgeApiKeyEnvOpt = Annotated[str, typer.Option(help="env variable with the judge's API key")]
JudgeCacheOpt = Annotated[
    Path | None, typer.Option(help=f"judge reply cache (sqlite) [{DEFAULT_JUDGE_CACHE}]")
]
JudgeConcurrencyOpt = Annotated[int, typer.Option(min=1, help="judge calls in flight")]


def build_judge(
    kind: str,
    model: str | None,
    base_url: str | None,
    api_key_env: str,
    cache: Path | None,
    concurrency: int,
) -> tuple[Judge, ChatCompleter | None]:
    """The judge, and the HTTP completer to close afterwards (None for the offline judge)."""
    from wideseek.eval.judges import LLMJudge, OfflineJudge

    if kind == "offline":
        return OfflineJudge(), None
    if not model or not base_url:
        raise UserError("--judge llm needs --judge-model and --judge-base-url")
    from wideseek.eval.judge_client import ChatCompleter

    completer = ChatCompleter(
        model,
        base_url,
        api_key_env=api_key_env,
        cache_path=cache or DEFAULT_JUDGE_CACHE,
        max_concurrency=concurrency,
    )
    return LLMJudge(completer), completer
