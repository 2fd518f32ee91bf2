"""`WebToolsConfig`: every knob of the web search / page access backends, typed and defaulted.

One model holds which search API and which page reader to use, per-service settings (base URL,
the *name* of the environment variable holding the key, request rate, concurrency cap), the
retry policy, the cache, and the direct-fetch limits (bytes, redirects, SSRF allow-list).
Keys themselves never live here: only the names of the variables that hold them, so a config
can be printed, logged or stored in a trace as is.

Base URLs are configurable so tests (and self-hosted mirrors) can point a backend anywhere.
It is the `tools.web` section of the config tree, so it lives at the bottom of the import graph
beside `config` (pydantic, `io` and the allow-list parser only): `config` imports it, and the
web tools (`wideseek.tools.web`) import it to build their objects; it knows nothing about HTTP.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from wideseek.io import cache_home
from wideseek.web_allow_list import parse_allow_rule

SearchName = Literal["serper", "brave", "tavily", "searxng"]
AccessName = Literal["jina", "direct"]
SEARCH_NAMES: tuple[SearchName, ...] = ("serper", "brave", "tavily", "searxng")
ACCESS_NAMES: tuple[AccessName, ...] = ("jina", "direct")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a typo must not fall back to a default


class ServiceSettings(_Section):
    """One remote service: where it is, which env variable holds its key, how hard to use it.
    Each service has its own subclass, so a partial override keeps the other defaults."""

    base_url: str = Field(description="service root; tests point it at a 127.0.0.1 fake")
    key_env: str | None = Field(None, description="env variable holding the API key")
    key_required: bool = Field(True, description="refuse to call without the key")
    rate_per_s: float = Field(5.0, ge=0.0, description="requests per second; 0: unlimited")
    max_concurrency: int = Field(8, ge=1, description="requests in flight at once")


class SerperSettings(ServiceSettings):
    base_url: str = "https://google.serper.dev"
    key_env: str | None = "SERPER_API_KEY"


class BraveSettings(ServiceSettings):
    base_url: str = "https://api.search.brave.com/res/v1"
    key_env: str | None = "BRAVE_API_KEY"
    rate_per_s: float = 1.0  # the free plan's limit


class TavilySettings(ServiceSettings):
    base_url: str = "https://api.tavily.com"
    key_env: str | None = "TAVILY_API_KEY"


class SearxngSettings(ServiceSettings):
    base_url: str = "http://127.0.0.1:8888"  # self-hosted: there is no public default
    key_required: bool = False


class JinaSettings(ServiceSettings):
    # without a key Jina still answers, at a lower rate limit (about 20 requests a minute)
    base_url: str = "https://r.jina.ai"
    key_env: str | None = "JINA_API_KEY"
    key_required: bool = False


class RetrySettings(_Section):
    """Retries (`wideseek.http_retry`) on 429, 5xx, connect errors and dropped connections; on
    timeouts too for search APIs, never for page reads (`access_deadline_s` bounds those).
    Its fields are `http_retry.RetryPolicy`'s: `ThrottledHttp` builds one from them as they are."""

    attempts: int = Field(4, ge=1, description="tries in all, the first included")
    backoff_s: float = Field(0.5, ge=0.0, description="first pause; doubles each retry")
    max_backoff_s: float = Field(8.0, ge=0.0, description="longest exponential pause")
    jitter_s: float = Field(0.5, ge=0.0, description="random extra pause, up to this")
    max_retry_after_s: float = Field(
        30.0, ge=0.0, description="longest pause a server's Retry-After can ask for"
    )


class DirectFetchSettings(_Section):
    """Fetching pages ourselves: limits and the SSRF allow-list."""

    rate_per_s: float = Field(0.0, ge=0.0, description="requests per second; 0: unlimited")
    max_concurrency: int = Field(16, ge=1)
    max_redirects: int = Field(5, ge=0, description="redirect hops followed, each checked")
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description=(
            "origins exempt from the private-address refusal: host, host:port, IP, [IPv6]:port,"
            " CIDR or CIDR:port; without a port only the scheme's default (80/443)"
        ),
    )
    user_agent: str = Field("wideseek/0.1 (+https://github.com/wideseek)")

    @field_validator("allowed_hosts")
    @classmethod
    def _entries_parse(cls, entries: list[str]) -> list[str]:
        for entry in entries:
            parse_allow_rule(entry)  # ValueError: one line naming the entry
        return entries


def default_cache_path() -> Path:
    return cache_home() / "web.sqlite"


class WebToolsConfig(_Section):
    search: SearchName = Field("serper", description="search API behind `search`")
    access: AccessName = Field("jina", description="page reader behind `access`")

    serper: SerperSettings = Field(default_factory=SerperSettings)
    brave: BraveSettings = Field(default_factory=BraveSettings)
    tavily: TavilySettings = Field(default_factory=TavilySettings)
    searxng: SearxngSettings = Field(default_factory=SearxngSettings)
    jina: JinaSettings = Field(default_factory=JinaSettings)
    direct: DirectFetchSettings = Field(default_factory=DirectFetchSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)

    timeout_s: float = Field(20.0, gt=0.0, description="limit for one whole request, body too")
    access_deadline_s: float = Field(
        30.0, gt=0.0, description="limit for one page access in all: every try and pause"
    )
    max_bytes: int = Field(5_000_000, ge=1024, description="bytes of a body kept; rest dropped")

    cache: bool = Field(True, description="keep answers in an on-disk SQLite cache")
    cache_path: Path | None = Field(None, description="cache file; None: the default location")
    cache_ttl_s: float = Field(7 * 24 * 3600.0, ge=0.0, description="age after which to refetch")
    cache_busy_timeout_s: float = Field(
        2.0, ge=0.0, description="wait for another process's lock before giving up the cache"
    )
    replay: bool = Field(
        False, description="answer only from the cache, whatever its age; a miss is an error"
    )

    check_url: str = Field(
        "https://example.com/", description="page fetched by `check_backends` to test access"
    )

    def service(self, name: str) -> ServiceSettings:
        """Settings of a search API or of the Jina reader, by name."""
        settings = getattr(self, name, None)
        if not isinstance(settings, ServiceSettings):
            raise KeyError(name)
        return settings

    def resolved_cache_path(self) -> Path:
        return Path(self.cache_path).expanduser() if self.cache_path else default_cache_path()
