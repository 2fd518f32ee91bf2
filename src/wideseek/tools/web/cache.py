"""`WebCache`: answers of web backends kept in one SQLite file, shared by concurrent callers.

Keyed by `cache_key(backend, kind, request, base_url=...)`: a hash of the backend name, the
base URL of the service it asks ("" for direct fetch), "search"/"access" and the normalised
request (query and k, or URL), so the same question to the same service is asked once, and a
test fake or a self-hosted mirror never shares entries with the real service. Values are JSON.
An entry older than `ttl_s` is a miss for normal lookups; replay (`any_age=True`) takes it
whatever its age, so a recorded run replays exactly. Expired rows are overwritten by the next
fetch, never deleted behind a replay's back.

Concurrency: the file is in WAL mode (readers never wait for a writer, other processes can
share it); calls run in worker threads (`asyncio.to_thread`) on one connection behind a lock,
so the event loop never blocks on disk. Each write is one SQLite transaction, so a crash
loses at most the answer being written.

Failure policy: a corrupt, locked, unwritable or otherwise unusable file turns the cache off
for the rest of the process with ONE logged warning; lookups then miss and writes are
dropped. The cache never raises into a search. It stores whatever it is given: callers must
not put secrets in values (none of the backends do).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("wideseek.tools.web")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers_v1 (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    kind TEXT NOT NULL,
    request TEXT NOT NULL,
    created REAL NOT NULL,
    value TEXT NOT NULL
)
"""


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
        self.busy_timeout_s = busy_timeout_s
        self.problem: str | None = None  # why the cache is off, once it is
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        state = f"off: {self.problem}" if self.problem else "on"
        return f"WebCache({str(self.path)!r}, {state})"

    @property
    def available(self) -> bool:
        return self.problem is None

    # -- public, async -------------------------------------------------------------------

    async def get(self, key: str, *, any_age: bool = False) -> Cached | None:
        if self.problem:
            return None
        return await asyncio.to_thread(self._get, key, any_age)

    async def put(self, key: str, *, backend: str, kind: str, request: str, value: Any) -> None:
        if self.problem:
            return
        blob = json.dumps(value, ensure_ascii=False)
        await asyncio.to_thread(self._put, key, backend, kind, request, blob)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- in a worker thread --------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout_s,
                isolation_level=None,  # autocommit: every statement is its own transaction
                check_same_thread=False,  # used from worker threads, always under self._lock
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(_SCHEMA)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _disable(self, error: BaseException) -> None:
        self.problem = f"{type(error).__name__}: {error}"
        log.warning(
            "web cache %s is unusable (%s); going on without a cache", self.path, self.problem
        )
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    def _get(self, key: str, any_age: bool) -> Cached | None:
        with self._lock:
            if self.problem:
                return None
            try:
                row = (
                    self._connection()
                    .execute("SELECT created, value FROM answers_v1 WHERE key = ?", (key,))
                    .fetchone()
                )
            except (sqlite3.Error, OSError) as e:
                self._disable(e)
                return None
        if row is None:
            return None
        created, blob = row
        if not any_age and time.time() - created > self.ttl_s:
            return None
        try:
            return Cached(value=json.loads(blob), created=created)
        except ValueError:  # one bad row is a miss, not a broken cache
            return None

    def _put(self, key: str, backend: str, kind: str, request: str, blob: str) -> None:
        with self._lock:
            if self.problem:
                return
            try:
                self._connection().execute(
                    "INSERT OR REPLACE INTO answers_v1 VALUES (?, ?, ?, ?, ?, ?)",
                    (key, backend, kind, request, time.time(), blob),
                )
            except (sqlite3.Error, OSError) as e:
                self._disable(e)
