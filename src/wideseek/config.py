"""One typed config tree, loaded from YAML and overridden from the command line.

Every limit that shapes agent behaviour lives here with the paper's default (WideSeek-R1:
lead 10 turns, subagent 20, single agent 50, 10 subagents per lead call, 5 tool calls per
subagent turn). Hitting a limit is recorded on the trajectory, never a crash.

`load_config(path, overrides)` reads YAML and applies dotted overrides such as
`agent.max_subagents=4`; a bad file or key ends in a `ConfigError` that says what and where.
Unknown keys are errors too (a typo must not fall back to a default silently); a key that
moved names its new place.

`tools.web` (a `WebToolsConfig`: search API, page reader, keys' variable names, cache) turns on
real web search; it excludes `tools.corpus` and `tools.retrieval_url`, since one run searches
one backend. Its model lives beside this one, in `wideseek.web_config` (the web tools import it
from there), so every arrow from here points down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from wideseek.errors import ConfigError  # re-exported: callers import it from here too
from wideseek.profiles import get_profile
from wideseek.web_config import WebToolsConfig

M = TypeVar("M", bound=BaseModel)

# Prompt-lookup guesses per pass (engine.speculate): 3 keeps a CPU pass within the int8
# kernel's 4 rows; measured 1.7x faster wide tasks (bench/speculate.py).
DEFAULT_SPECULATE = 3
# ... while at most this many requests decode together (engine.speculate_batch). Measured on 2
# CPU cores (bench/speculate.py --side-by-side, subagents' report turns, greedy): at 2 rows
# the guesses cut decode time 3.2 -> 2.2 s (single-row only: 2.8 s); at 4 rows passes fell
# 62 -> 25 but decode time did not (3.8 vs 3.9 s): 16-token passes leave the int8 kernel.
DEFAULT_SPECULATE_BATCH = 2


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgentConfig(_Section):
    mode: Literal["multi", "single"] = Field("multi", description="lead+subagents or one agent")
    profile: str = Field(
        "wideseek", description="tool names, schemas and call rules (wideseek.profiles)"
    )
    max_subagents: int = Field(10, ge=1, description="subagents kept per lead tool call")
    max_tool_calls: int = Field(5, ge=1, description="tool calls (or items) per subagent turn")
    lead_turns: int = Field(10, ge=1, description="turns of the lead agent")
    subagent_turns: int = Field(20, ge=1, description="turns of each subagent")
    single_turns: int = Field(50, ge=1, description="turns of the single agent")
    context_length: int = Field(32000, ge=256, description="tokens per agent context")
    max_response_tokens: int | None = Field(None, description="cap per generation; None: context")
    # The lead (or the single agent) writes the final table: a 25-row table is ~600 tokens,
    # while tool calls and reports fit far less (bench/demo_fit.py), so the agent that writes
    # the answer may get a cap of its own; both modes get the same one, so they compare.
    lead_response_tokens: int | None = Field(
        None,
        ge=1,
        description="cap per generation of the lead or single agent (the answer's writer); "
        "None: max_response_tokens",
    )
    temperature: float = Field(1.0, ge=0.0, description="sampling temperature (0: greedy)")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="nucleus sampling mass (1: off)")
    top_k: int | None = Field(
        None,
        ge=0,
        description="sample among the k likeliest tokens (0: off); None: the engine's "
        "default, which a vLLM or SGLang server may take from the model's generation config",
    )
    thinking: bool = Field(True, description="let the model think in <think> blocks")
    turn_hints: bool = Field(True, description="tell each agent how many turns it has left")
    max_repeated_turns: int = Field(
        2,
        ge=1,
        description="stop an agent after this many turns in a row that only repeat "
        "its earlier tool calls (a small model's loop); each is answered with an error",
    )
    seed: int | None = Field(
        None, description="sampling seed; each (task, trial, agent) gets its own stream of it"
    )

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, name: str) -> str:
        get_profile(name)
        return name


class EngineConfig(_Section):
    base_url: str | None = Field(None, description="OpenAI-compatible server; None: local model")
    model: str | None = Field(None, description="model name on the server, or local model dir")
    api_key_env: str = Field("OPENAI_API_KEY", description="env variable holding the API key")
    path: Literal["auto", "tokens", "chat"] = Field(
        "auto", description="tokens: render locally, /v1/completions; chat: /v1/chat/completions"
    )
    tokenizer: str | None = Field(None, description="tokenizer dir for the token path")
    backend: Literal["auto", "torch", "llama.cpp"] = Field(
        "auto",
        description="local model: torch (transformers, every feature) or llama.cpp (its "
        "quantised CPU kernels, the model merged into a GGUF file once; needs "
        "llama-cpp-python; no speculation, batch invariance or weight sync); auto: llama.cpp "
        "where torch would decode in fp32 on a CPU (no bf16 units), the model's base is a GGUF "
        "file and llama-cpp-python is installed and neither dtype nor batch_invariant is set, "
        "else torch (llm/local_backend.py)",
    )
    dtype: str = Field(
        "auto",
        pattern="^(auto|bf16|fp16|fp32)$",
        description="local model weights: auto picks "
        "bf16 where the GPU or CPU has native bf16 units, else fp32",
    )
    int8_decode: Literal["auto", "on", "off"] = Field(
        "auto",
        description="local model: decode steps of up to 4 rows read int8 copies of the "
        "weights (faster batch-1 decoding on a CPU; pre-fill stays exact); auto: on a CPU",
    )
    batch_invariant: bool | None = Field(
        None,
        description="local model: decode every request as if alone, so a seeded run "
        "reproduces token for token at any concurrency (slower: 1.24x for 4 wide tasks, "
        "greedy); None: on when agent.seed is set (an unseeded run stays batched)",
    )
    speculate: int = Field(
        DEFAULT_SPECULATE,
        ge=0,
        le=64,
        description="local model: each greedy request checks up to this many prompt-lookup "
        "guesses (tokens copied from its own context) per pass: fewer passes, the tokens of "
        "plain greedy decoding (bit for bit in fp32 without int8 decode; bf16 and int8 round a "
        "pass over several tokens slightly differently); 0: off",
    )
    speculate_batch: int = Field(
        DEFAULT_SPECULATE_BATCH,
        ge=0,
        description="local model: speculate only while at most this many requests decode "
        "together (0: at any batch size)",
    )
    timeout_s: float = 600.0
    max_retries: int = 5
    max_concurrency: int = Field(64, ge=1, description="global cap on in-flight engine calls")

    @field_validator("int8_decode", mode="before")
    @classmethod
    def _on_off(cls, value: Any) -> Any:
        # YAML reads a bare on / off (`--set engine.int8_decode=off`, a run file) as a boolean
        return ("on" if value else "off") if isinstance(value, bool) else value


class ToolsConfig(_Section):
    corpus: str | None = Field(None, description="local JSONL corpus; None: the bundled world")
    retrieval_url: str | None = Field(None, description="retrieval service base URL")
    summarize_pages: bool = Field(
        False, description="access with info_to_extract returns the engine's focused summary"
    )
    search_top_k: int = Field(3, ge=1, le=50, description="results per search query by default")
    snippet_chars: int = Field(5000, ge=50, description="characters per search hit shown")
    page_chars: int = Field(25000, ge=100, description="characters of a page shown by access")
    web: WebToolsConfig | None = Field(
        None, description="real web search and page access; None: a corpus or retrieval_url"
    )

    def backend_conflict(self) -> str | None:
        """Why these settings name more than one search backend; None if they do not."""
        if self.web is None:
            return None
        others = [name for name in ("corpus", "retrieval_url") if getattr(self, name)]
        if not others:
            return None
        return f"web cannot be combined with {others[0]}: one run searches one backend"

    @model_validator(mode="after")
    def _one_backend(self) -> ToolsConfig:
        problem = self.backend_conflict()
        if problem:
            raise ValueError(problem)
        return self


# Keys that moved between sections: an old config gets told where they went.
MOVED_KEYS = {
    f"agent.{name}": f"tools.{name}" for name in ("search_top_k", "snippet_chars", "page_chars")
}


class Config(_Section):
    agent: AgentConfig = Field(default_factory=AgentConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    tools: ToolsConfig = Field(default_factory=ToolsConfig)


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    node = tree
    parts = key.split(".")
    for part in parts[:-1]:
        if node.get(part) is None:  # absent, or an optional section left null (`web: null`)
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            raise ConfigError(f"override {key!r}: {part!r} is not a section")
    node[parts[-1]] = value


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    values: dict[str, Any] | None = None,
) -> Config:
    """The YAML file, then `key=value` overrides (values read as YAML), then `values`: dotted
    keys with values already typed (a CLI flag's string stays a string: `--model 2024`)."""
    tree = read_yaml_tree(path, overrides)
    for key, value in (values or {}).items():
        _set_dotted(tree, key, value)
    return validate_tree(Config, tree, path)


def read_yaml_tree(path: str | Path | None, overrides: list[str] | None = None) -> dict[str, Any]:
    """A YAML mapping (empty without a path) with dotted `key=value` overrides applied."""
    tree: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as e:
            raise ConfigError(f"{path}: cannot read config ({e.strerror})") from e
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: invalid YAML {_yaml_problem(e)}") from e
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: top level must be a mapping")
        tree = loaded
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected key=value")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item!r}: invalid YAML value {_yaml_problem(e)}") from e
        _set_dotted(tree, key.strip(), value)
    return tree


def _yaml_problem(e: yaml.YAMLError) -> str:
    """A YAML error on one line: where, then what (PyYAML's own text quotes the line, with a
    caret under the spot, over several lines)."""
    if isinstance(e, yaml.MarkedYAMLError) and e.problem_mark is not None:
        mark = e.problem_mark
        what = " ".join(filter(None, [e.problem, e.context]))
        return f"at line {mark.line + 1}, column {mark.column + 1}: {what}"
    return "(" + " ".join(str(e).split()) + ")"


def validate_tree(model: type[M], tree: dict[str, Any], path: str | Path | None) -> M:
    """`model` from a config tree; the first problem as a ConfigError naming file and key."""
    try:
        return model.model_validate(tree)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        if where in MOVED_KEYS:
            message = f"moved to {MOVED_KEYS[where]}"
        raise ConfigError(f"{path or 'config'}: {where}: {message}") from e
