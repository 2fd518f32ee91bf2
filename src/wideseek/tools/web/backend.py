"""`WebBackend`: one search API + one page reader as a `SearchBackend`, cached and audited.

`open_web_backend(cfg)` builds it from a `WebToolsConfig`; `check_backends(cfg)` says, one
line per backend, whether each can work (key set, endpoint answering).

Every `search`/`access`:
1) normalises the request (query whitespace and Unicode form, k; URL scheme/host case,
   default port, fragment) and keys it by backend, the service's base URL and the request;
2) joins an identical request already in flight, if there is one: concurrent callers asking
   the same thing share one lookup and one network call (their audits say `coalesced`);
3) else looks it up in the cache, and on a miss asks the network (unless replaying: then a
   miss is a `WebToolError`). A cached page is served only if its reader vouches for it under
   today's settings (`PageReader.vet_cached`: direct fetch re-checks every recorded redirect
   hop with today's guard, so a page fetched under a looser allow-list is refused, and an
   entry with no recorded chain is a miss);
4) stores the answer with the facts of its fetch, and returns it with an audit record
   (`fetched.py` has the shape): search → `WebHits` (a list of SearchHit with `.audit`),
   access → a Page with `meta["audit"]`. A failure raises `WebToolError` carrying `.audit`,
   which records the failure's kind and the tries it took.

The shared lookup runs as its own task, so a caller that is cancelled (an agent's deadline)
does not cancel it for the others; `aclose` cancels what is still running.

Limits hold per WebBackend: open one per process and share it between rollouts. It knows
nothing about prompts or the model-facing tools, which cut text to `page_chars` and turn a
`WebToolError` into an error result.
"""

from __future__ import annotations

import asyncio
import copy
import importlib.util
import time
import unicodedata
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx

from wideseek.tools.base import Page, SearchHit
from wideseek.tools.web.cache import WebCache, cache_key
from wideseek.tools.web.errors import ApiKey, WebToolError
from wideseek.tools.web.fetched import Fetched, WebHits
from wideseek.tools.web.page_readers import DirectFetcher, JinaReader, PageReader
from wideseek.tools.web.search_apis import SEARCH_APIS, SearchApi
from wideseek.tools.web.ssrf_guard import HostGuard, Resolver, system_resolver
from wideseek.tools.web.throttled_http import ThrottledHttp
from wideseek.web_config import ACCESS_NAMES, SEARCH_NAMES, WebToolsConfig

T = TypeVar("T")


def normalise_query(query: str) -> str:
    return " ".join(unicodedata.normalize("NFC", query).split())


def normalise_url(url: str) -> str:
    """The cache's form of a URL: lower-case scheme and host, no default port, no fragment."""
    try:
        return str(httpx.URL(url.strip()).copy_with(fragment=None))
    except (httpx.InvalidURL, TypeError):
        return url.strip()


class WebBackend:
    def __init__(
        self,
        searcher: SearchApi,
        reader: PageReader,
        cache: WebCache | None = None,
        *,
        replay: bool = False,
    ) -> None:
        if replay and cache is None:
            raise WebToolError("replay mode needs the cache (cache is off in the config)")
        self.searcher = searcher
        self.reader = reader
        self.cache = cache
        self.replay = replay
        # cache key → the lookup answering it right now, which identical requests join
        self._in_flight: dict[str, asyncio.Task[tuple[Any, dict[str, Any]]]] = {}

    def __repr__(self) -> str:
        parts = f"{self.searcher!r}, {self.reader!r}, {self.cache!r}, replay={self.replay}"
        return f"WebBackend({parts})"

    # -- SearchBackend -------------------------------------------------------------------

    async def search(self, query: str, k: int) -> WebHits:
        request = {"query": normalise_query(query), "k": k}
        ask = _Ask(
            backend=self.searcher.name,
            kind="search",
            shown=request["query"],
            fetch=lambda: self.searcher.search(request["query"], k),
            encode=lambda hits: [h.model_dump() for h in hits],
            decode=lambda rows: [SearchHit(**row) for row in rows],
        )
        hits, audit = await self._lookup(self.searcher.base_url, request, ask)
        return WebHits(hits, audit)

    async def access(self, url: str) -> Page:
        request = {"url": normalise_url(url)}
        ask = _Ask(
            backend=self.reader.name,
            kind="access",
            shown=request["url"],
            fetch=lambda: self.reader.read(request["url"]),
            encode=lambda page: page.model_dump(exclude={"meta"}),
            decode=lambda row: Page(**row),
            vet=self.reader.vet_cached,
        )
        page, audit = await self._lookup(self.reader.base_url, request, ask)
        return page.model_copy(update={"meta": {"audit": audit}})

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()  # tasks of a finished asyncio.run are gone already
        pending = [task for task in self._in_flight.values() if task.get_loop() is loop]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self.searcher.http.aclose()
        await self.reader.http.aclose()
        if self.cache is not None:
            self.cache.close()

    # -- coalescing, cache, replay, audit ------------------------------------------------

    async def _lookup(
        self, base_url: str, request: dict[str, Any], ask: _Ask[T]
    ) -> tuple[T, dict[str, Any]]:
        """The answer to `request`, shared with any identical request already in flight."""
        key = cache_key(ask.backend, ask.kind, request, base_url=base_url)
        running = self._in_flight.get(key)
        if running is None or running.get_loop() is not asyncio.get_running_loop():
            task = self._start(key, self._answer(key, ask))
            return await asyncio.shield(task)  # a cancelled caller leaves it to the others
        started = time.perf_counter()
        try:
            value, first = await asyncio.shield(running)
        except WebToolError as e:
            joined = copy.copy(e)  # same class and message, this caller's own audit
            joined.audit = _joined_audit(e.audit or {}, started)
            raise joined from None  # like the first: no chained cause to carry text along
        # a copy of the value, as a cache hit would give: callers never share objects
        return ask.decode(ask.encode(value)), _joined_audit(first, started)

    def _start(
        self, key: str, answer: Coroutine[Any, Any, tuple[T, dict[str, Any]]]
    ) -> asyncio.Task[tuple[T, dict[str, Any]]]:
        task = asyncio.create_task(answer)
        self._in_flight[key] = task

        def finished(done: asyncio.Task[tuple[T, dict[str, Any]]]) -> None:
            if self._in_flight.get(key) is done:
                del self._in_flight[key]
            if not done.cancelled():
                done.exception()  # retrieved: every caller may have gone (no "never retrieved")

        task.add_done_callback(finished)
        return task

    async def _answer(self, key: str, ask: _Ask[T]) -> tuple[T, dict[str, Any]]:
        """From the cache, else from the network (and into the cache), with its audit."""
        started = time.perf_counter()
        audit = _new_audit(ask, cache=self.cache, replay=self.replay)
        try:
            value, facts = await self._cached_or_fetched(key, ask, audit)
        except WebToolError as e:
            audit |= {"error": str(e), "error_kind": e.kind, "attempts": e.attempts}
            e.audit = self._finish(audit, started)
            raise
        if audit["cache"] == "miss" and self.cache is not None:
            entry = {"value": ask.encode(value), "fetch": _stored(facts)}
            await self.cache.put(
                key, backend=ask.backend, kind=ask.kind, request=ask.shown, value=entry
            )
        return value, self._finish(audit | facts, started)

    async def _cached_or_fetched(
        self, key: str, ask: _Ask[T], audit: dict[str, Any]
    ) -> tuple[T, dict[str, Any]]:
        """The value and the facts of its fetch; notes a cache hit in `audit`."""
        cached = await self._cached(key, ask)
        why = ""
        if cached is not None:
            audit["cache"] = "hit"  # a refusal by `vet` is a refusal of the cached answer
            if ask.vet(cached[1]):  # BlockedUrlError: refused, and not fetched again either
                return cached
            audit["cache"] = "miss"  # the reader cannot vouch for it: fetch again
            why = " (the cached one has no record to check it by today)"
        if self.replay:
            assert self.cache is not None  # checked at construction
            if self.cache.problem:
                why = f" (cache unusable: {self.cache.problem})"
            message = f"replay mode: no cached {ask.backend} answer for {ask.kind} {ask.shown!r}"
            raise WebToolError(message + why, kind="replay_miss")
        fetched = await ask.fetch()
        return fetched.value, fetched.facts() | {"attempts": fetched.attempts}

    async def _cached(self, key: str, ask: _Ask[T]) -> tuple[T, dict[str, Any]] | None:
        if self.cache is None:
            return None
        cached = await self.cache.get(key, any_age=self.replay)
        if cached is None:
            return None
        try:
            return ask.decode(cached.value["value"]), dict(cached.value["fetch"])
        except (KeyError, TypeError, ValueError):
            return None  # an entry from another version: fetch again

    def _finish(self, audit: dict[str, Any], started: float) -> dict[str, Any]:
        if audit["cache"] == "miss" and self.cache is not None and not self.cache.available:
            audit["cache"] = "off"  # broken since this process started: say so
        audit["elapsed_s"] = round(time.perf_counter() - started, 6)
        return audit


def _always(facts: dict[str, Any]) -> bool:
    return True


@dataclass(frozen=True)
class _Ask(Generic[T]):
    """One search or access: how to fetch it, store it, read it back, and vouch for a cached
    answer (`vet`: True to serve it, False to fetch again, BlockedUrlError to refuse it)."""

    backend: str
    kind: str  # "search" | "access"
    shown: str  # the normalised request, as audits and the cache show it
    fetch: Callable[[], Awaitable[Fetched[T]]]
    encode: Callable[[T], Any]
    decode: Callable[[Any], T]
    vet: Callable[[dict[str, Any]], bool] = _always


def _new_audit(ask: _Ask[Any], *, cache: WebCache | None, replay: bool) -> dict[str, Any]:
    return {
        "backend": ask.backend,
        "kind": ask.kind,
        "request": ask.shown,
        "cache": "off" if cache is None else "miss",
        "replay": replay,
        "status": None,
        "final_url": None,
        "redirects": 0,
        "bytes": 0,
        "truncated": False,
        "content_type": None,
        "chain": None,
        "attempts": 0,
        "elapsed_s": 0.0,
        "coalesced": False,
        "error": None,
        "error_kind": None,
    }


def _stored(facts: dict[str, Any]) -> dict[str, Any]:
    """The facts a cache entry keeps: those of the fetch, not of this call's tries."""
    return {name: value for name, value in facts.items() if name != "attempts"}


def _joined_audit(first: dict[str, Any], started: float) -> dict[str, Any]:
    """The audit of a caller that joined `first`'s lookup: its facts, no tries of its own."""
    elapsed = round(time.perf_counter() - started, 6)
    return {**first, "coalesced": True, "attempts": 0, "elapsed_s": elapsed}


# -- assembly --------------------------------------------------------------------------------

_NEEDS = {  # modules of the `web` extra each backend imports when it runs
    "direct": ("trafilatura", "lxml_html_clean", "pypdf", "charset_normalizer"),
}


def missing_modules(*names: str) -> list[str]:
    """Modules of the `web` extra that backends `names` need and this Python lacks."""
    wanted = [m for name in names for m in _NEEDS.get(name, ())]
    return [m for m in dict.fromkeys(wanted) if importlib.util.find_spec(m) is None]


def _require_extra(*names: str) -> None:
    missing = missing_modules(*names)
    if missing:
        raise WebToolError(
            f"the web tools need the `web` extra (missing: {', '.join(missing)}): "
            "pip install 'wideseek[web]'"
        )


def _http(cfg: WebToolsConfig, name: str) -> ThrottledHttp:
    if name == "direct":
        settings = cfg.direct
        key = None
        headers = {"User-Agent": settings.user_agent}
    else:
        settings = cfg.service(name)
        key = ApiKey.from_env(settings.key_env)
        headers = {"User-Agent": cfg.direct.user_agent}
    reads_pages = name in ACCESS_NAMES
    return ThrottledHttp(
        name,
        retry=cfg.retry,
        timeout_s=cfg.timeout_s,
        # A page read gets one deadline in all, and a slow page is not asked for again: a
        # timeout there is rarely cured by the same request (an API's timeouts are retried).
        deadline_s=cfg.access_deadline_s if reads_pages else None,
        retry_timeouts=not reads_pages,
        rate_per_s=settings.rate_per_s,
        max_concurrency=settings.max_concurrency,
        key=key,
        # Direct fetch connects to checked addresses only: no proxy from the environment
        # (it would connect where the guard never looked), and no reused connections (pooled
        # by IP, a TLS session set up for one host name could serve a request for another).
        trust_env=name != "direct",
        keepalive=name != "direct",
        headers=headers,
    )


def make_search_api(cfg: WebToolsConfig, name: str) -> SearchApi:
    if name not in SEARCH_APIS:
        raise WebToolError(f"unknown search backend {name!r}; known: {', '.join(SEARCH_NAMES)}")
    return SEARCH_APIS[name](cfg.service(name), _http(cfg, name), cfg.max_bytes)


def make_reader(cfg: WebToolsConfig, name: str, resolver: Resolver | None = None) -> PageReader:
    if name == "jina":
        return JinaReader(cfg.jina, _http(cfg, "jina"), cfg.max_bytes)
    if name == "direct":
        guard = HostGuard(cfg.direct.allowed_hosts, resolver or system_resolver)
        return DirectFetcher(cfg.direct, _http(cfg, "direct"), guard, cfg.max_bytes)
    raise WebToolError(f"unknown access backend {name!r}; known: {', '.join(ACCESS_NAMES)}")


def open_web_backend(cfg: WebToolsConfig, *, resolver: Resolver | None = None) -> WebBackend:
    """The configured search API + page reader, behind the cache (unless `cfg.cache` is off).

    `resolver` replaces DNS for direct fetch's SSRF guard (tests map fake names to 127.0.0.1).
    Raises WebToolError for an unknown backend name or replay without a cache. Missing keys
    are not an error here: the first call says which variable to set (and `check_backends`)."""
    _require_extra(cfg.search, cfg.access)
    cache = None
    if cfg.cache:
        cache = WebCache(
            cfg.resolved_cache_path(),
            ttl_s=cfg.cache_ttl_s,
            busy_timeout_s=cfg.cache_busy_timeout_s,
        )
    return WebBackend(
        make_search_api(cfg, cfg.search),
        make_reader(cfg, cfg.access, resolver),
        cache,
        replay=cfg.replay,
    )


async def _check_one(cfg: WebToolsConfig, name: str, resolver: Resolver | None) -> tuple[bool, str]:
    try:
        _require_extra(name)
    except WebToolError as e:
        return False, str(e)
    one_try = cfg.model_copy(update={"retry": cfg.retry.model_copy(update={"attempts": 1})})
    started = time.perf_counter()
    if name in SEARCH_APIS:
        api: SearchApi | PageReader = make_search_api(one_try, name)
    else:
        api = make_reader(one_try, name, resolver)
    problem = api.missing_key()
    if problem:
        return False, problem
    try:
        if isinstance(api, SearchApi):
            hits = (await api.search("wideseek", 1)).value
            what = f"{api.base_url} answered ({len(hits)} result{'s' * (len(hits) != 1)})"
        else:
            page = (await api.read(cfg.check_url)).value
            what = f"read {cfg.check_url} ({len(page.text)} characters)"
    except WebToolError as e:
        return False, str(e)
    finally:
        await api.http.aclose()
    note = ""
    if isinstance(api, JinaReader) and api.key is None:
        unset = f" (${cfg.jina.key_env} unset)" if cfg.jina.key_env else ""
        note = f"; no key{unset}: Jina's lower free rate limit applies"
    return True, f"ok: {what} in {time.perf_counter() - started:.2f} s{note}"


async def check_backends(
    cfg: WebToolsConfig,
    names: Sequence[str] | None = None,
    *,
    resolver: Resolver | None = None,
) -> list[tuple[str, bool, str]]:
    """(name, ok, one line) for each backend in `names` (default: the configured search and
    access backends): is the key set, does the endpoint answer one real request (one try,
    no cache). Never raises for a backend's failure; the line says what is wrong."""
    names = list(names) if names is not None else [cfg.search, cfg.access]
    known = set(SEARCH_NAMES) | set(ACCESS_NAMES)

    async def one(name: str) -> tuple[str, bool, str]:
        if name not in known:
            return name, False, f"unknown backend; known: {', '.join(sorted(known))}"
        ok, line = await _check_one(cfg, name, resolver)
        return name, ok, line

    return list(await asyncio.gather(*(one(name) for name in names)))
