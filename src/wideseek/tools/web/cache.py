"""`WebCache`: answers of web backends kept in one SQLite file, shared by concurrent callers.

Keyed by `cache_key(backend, kind, request, base_url=...)`: a hash of the backend name, the
base URL of the service it asks ("" for direct fetch), "search"/"access" and the normalised
request (query and k, or URL), so the same question to the same service is asked once, and a
test fake or a self-hosted mirror never shares entries with the real service. Values are JSON.
An entry older than `ttl_s` is a miss for normal lookups; replay (`any_age=True`) takes it
whatever its age, so a recorded run replays exactly. Expired rows are overwritten by the next
fetch, never deleted behind a replay's back.

Storage and failure policy are `wideseek.sqlite_cache.SqliteCache`'s (the judge's cache uses
the same): WAL mode, one transaction per write; calls run in worker threads
(`asyncio.to_thread`) so the event loop never blocks on disk. An unreadable file is kept aside
as `<name>.corrupt` and a new cache started, with one warning; a cache that cannot be used
(locked, unwritable path) is off for the rest of the process after one warning: lookups miss,
writes are dropped, `problem` says why. The cache never raises into a search. It stores
whatever it is given: callers must not put secrets in values (none of the backends do).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wideseek.sqlite_cache import SqliteCache

TABLE = "answers_v1"


def cache_key(backend: str, kind: str, request: dict[str, Any], *, base_url: str) -> str:
    """The entry's key. `base_url` is required: a key without it would let answers of one
    endpoint (a fake on 127.0.0.1) stand in for another's (the real API)."""
    blob = json.dumps([backend, base_url, kind, request], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Cached:
    value: Any
    created: float  # unix time of the fetch


class WebCache:
    def __init__(self, path: Path, *, ttl_s: float, busy_timeout_s: float = 2.0) -> None:
        self.path = Path(path)
        self.ttl_s = ttl_s
        self._store = SqliteCache(
            self.path,
            table=TABLE,
            labels=("backend", "kind", "request"),
            what="web cache",
            busy_timeout_s=busy_timeout_s,
        )

    def __repr__(self) -> str:
        state = f"off: {self.problem}" if self.problem else "on"
        return f"WebCache({str(self.path)!r}, {state})"

    @property
    def problem(self) -> str | None:
        """Why the cache is off, once it is."""
        return self._store.problem

    @property
    def available(self) -> bool:
        return self._store.available

    async def get(self, key: str, *, any_age: bool = False) -> Cached | None:
        if self.problem:
            return None
        entry = await asyncio.to_thread(self._store.get, key)
        if entry is None:
            return None
        if not any_age and time.time() - entry.created > self.ttl_s:
            return None
        try:
            return Cached(value=json.loads(entry.value), created=entry.created)
        except ValueError:  # one bad row is a miss, not a broken cache
            return None

    async def put(self, key: str, *, backend: str, kind: str, request: str, value: Any) -> None:
        if self.problem:
            return
        blob = json.dumps(value, ensure_ascii=False)
        await asyncio.to_thread(
            self._store.put, key, blob, backend=backend, kind=kind, request=request
        )

    def close(self) -> None:
        self._store.close()
