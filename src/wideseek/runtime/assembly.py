"""Assemble a runnable system from a `Config`: engine, search backend and orchestrator.

This is the one place that decides what the defaults are, so `wideseek ask`, `serve`, `eval`,
the world's oracle and training's dev evaluation behave the same:
- engine: `engine.base_url` set → `HttpEngine` (checked with one GET /v1/models first);
  else `engine.model` names a local model directory → `LocalEngine`, or `LlamaCppEngine` where
  `engine.backend` picks llama.cpp (auto: on a CPU where torch would decode in fp32, for a
  model on a GGUF base, when llama-cpp-python is installed; `local_backend`); else the model
  shipped inside the package (`wideseek/assets/model`), or `$WIDESEEK_MODEL`; else a clear
  error.
- search backend: `tools.web` → real web search and page access (`wideseek.tools.web`: the
  configured search API and page reader, cached on disk); `tools.retrieval_url` → the
  retrieval service; `tools.corpus` → BM25 over that JSONL file; else the bundled offline
  world's corpus. `tools.web` excludes the other two (a `ConfigError`). The backend is closed
  when the run ends (`close_backend`): a web backend holds HTTP clients and the cache file.
- sampling and limits: a local model's own recommendations (generation_config.json: e.g.
  greedy, a response cap; wideseek.json: the turn and token limits it was evaluated with) fill
  the agent settings the user left unset (`with_model_defaults`).
- a local model is resolved once (`llm.resolved_model.resolve_model`); the engine is named by
  the model directory itself (wideseek.json's name), not by a constant here.
- page extraction: `tools.summarize_pages` → `access` with `info_to_extract` returns the
  engine's focused summary of the page (agents/extractor.py).

It sits above `agents`, `llm`, `tools` and `world` and below `train` and the CLI; nothing below
imports it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from wideseek.agents.extractor import engine_extractor
from wideseek.agents.orchestrator import AgentObserver, Orchestrator
from wideseek.config import AgentConfig, Config, ConfigError, EngineConfig
from wideseek.llm.engine import Engine, EngineError
from wideseek.llm.local_backend import BackendChoice, pick_local_backend
from wideseek.llm.model_dir import is_model_dir
from wideseek.llm.resolved_model import ResolvedModel, resolve_model
from wideseek.tools.base import SearchBackend

MODEL_ENV = "WIDESEEK_MODEL"


def package_model_dir() -> Path:
    """Where the default model lives inside the installed package (`wideseek train ship`)."""
    return Path(str(resources.files("wideseek") / "assets" / "model"))


def shipped_model_dir() -> Path | None:
    """The model directory that ships inside the package, or `$WIDESEEK_MODEL`; None if none."""
    override = os.environ.get(MODEL_ENV)
    if override:
        return Path(override)
    path = package_model_dir()
    return path if is_model_dir(path) else None


def local_model_dir(config: Config) -> Path | None:
    """The model directory a local engine runs: `engine.model`, else the shipped default (or
    `$WIDESEEK_MODEL`); None when a server is configured or nothing is there."""
    if config.engine.base_url:
        return None
    return Path(config.engine.model) if config.engine.model else shipped_model_dir()


def uses_shipped_model(config: Config) -> bool:
    """Whether `config` runs the model inside the package (not a server, a dir, an override)."""
    return local_model_dir(config) == package_model_dir()


def backend_for(config: Config, model: ResolvedModel) -> BackendChoice:
    """The local engine (torch or llama.cpp) `config` runs `model` on, with why
    (`engine.backend`, llm/local_backend.py)."""
    engine = config.engine
    return pick_local_backend(
        engine.backend, model, dtype=engine.dtype, batch_invariant=engine.batch_invariant
    )


def local_backend(config: Config) -> BackendChoice | None:
    """`backend_for` the local model `config` runs; None when it runs none (a server, or no
    model to run)."""
    directory = local_model_dir(config)
    return None if directory is None else backend_for(config, resolve_model(directory))


async def open_engine(config: Config, model: ResolvedModel | None = None) -> Engine:
    """The engine `config` asks for, or a local engine over `model` (already resolved); an
    unusable one raises `EngineError` with one clear line."""
    engine_cfg: EngineConfig = config.engine
    agent = config.agent
    if engine_cfg.base_url and model is None:
        from wideseek.llm.http import HttpEngine

        engine = HttpEngine.from_config(
            engine_cfg, context_length=agent.context_length, enable_thinking=agent.thinking
        )
        try:
            await engine.check()
        except BaseException:
            await engine.close()
            raise
        return engine
    if model is None:
        model_dir = local_model_dir(config)
        if model_dir is None:
            raise EngineError(
                "no engine: give --engine URL (an OpenAI-compatible server) or --model DIR "
                "(a local Hugging Face model directory); this install ships no default model"
            )
        model = resolve_model(model_dir)
    if backend_for(config, model).backend == "llama.cpp":
        from wideseek.llm.llamacpp_engine import LlamaCppEngine

        # its sequences' cells are allocated up front: as many as an agent may use
        return LlamaCppEngine(model, context_length=agent.context_length, seed=agent.seed or 0)
    try:
        from wideseek.llm.local import LocalEngine
    except ImportError as e:
        raise EngineError(f"a local model needs the [local] extra ({e.name} missing)") from None
    invariant = engine_cfg.batch_invariant
    if invariant is None:  # a seeded run (sampled or greedy, e.g. `train eval`) reproduces
        invariant = agent.seed is not None  # whatever else is in flight
    return LocalEngine(
        model,
        seed=agent.seed or 0,
        dtype=engine_cfg.dtype,
        int8_decode=engine_cfg.int8_decode,
        batch_invariant=invariant,
        speculate=engine_cfg.speculate,
        speculate_batch=engine_cfg.speculate_batch,
    )


async def close_engine(engine: Engine) -> None:
    close = getattr(engine, "close", None)
    if close is not None:
        await close()


def open_backend(config: Config) -> SearchBackend:
    """The search/access backend `config` asks for (see the module docstring); close it with
    `close_backend`."""
    tools = config.tools
    conflict = tools.backend_conflict()  # again here: code may set fields after validation
    if conflict:
        raise ConfigError(f"tools: {conflict}")
    if tools.web is not None:
        from wideseek.tools.web import open_web_backend

        return open_web_backend(tools.web)
    if tools.retrieval_url:
        from wideseek.tools.retrieval_client import RetrievalClient

        return RetrievalClient(tools.retrieval_url)
    if tools.corpus:
        corpus = Path(tools.corpus)
    else:
        from wideseek.world.store import load_world

        corpus = load_world().corpus_path
    from wideseek.tools.local_corpus import LocalCorpus

    return LocalCorpus(corpus)


async def close_backend(backend: SearchBackend) -> None:
    """Release what a backend holds (HTTP clients, a cache file); a no-op for a corpus."""
    aclose = getattr(backend, "aclose", None)
    if aclose is not None:
        await aclose()


def with_model_defaults(agent: AgentConfig, engine: Engine) -> AgentConfig:
    """`agent` with the engine's own recommended settings (a local model's
    generation_config.json and wideseek.json, by AgentConfig field name) in every field the user
    did not set explicitly. The context length is only ever lowered: an agent should not plan
    for more room than the model has."""
    defaults_of = getattr(engine, "generation_defaults", None)
    if defaults_of is None:
        return agent
    update: dict[str, float | int] = {}
    for name, value in defaults_of().items():
        if name in agent.model_fields_set:
            continue
        if name == "context_length":
            value = min(int(value), agent.context_length)
        update[name] = value
    return agent.model_copy(update=update)


@asynccontextmanager
async def open_orchestrator(
    config: Config, observer: AgentObserver | None = None, engine: Engine | None = None
) -> AsyncIterator[Orchestrator]:
    """An orchestrator over the configured (or given) engine and backend, both closed on exit
    (the backend even when the engine fails to open)."""
    backend = open_backend(config)
    try:
        own_engine = engine is None
        engine = engine or await open_engine(config)
        try:
            extractor = engine_extractor(engine) if config.tools.summarize_pages else None
            agent = with_model_defaults(config.agent, engine)
            tools = config.tools
            yield Orchestrator.with_backend(engine, backend, agent, observer, extractor, tools)
        finally:
            if own_engine:
                await close_engine(engine)
    finally:
        await close_backend(backend)
