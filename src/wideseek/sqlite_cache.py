"""`SqliteCache`: text values by key in one SQLite file; the judge's and the web tools' cache.

Contract:
- One table per cache (`table`), rows `(key, *labels, created, value)`: `labels` are text columns
  kept for people who inspect the file (the web cache: backend, kind, request; the judge: model),
  `created` is the unix time of the write. `get(key) -> Entry | None`, `put(key, value,
  **labels)`; what a value means (JSON, a reply, an age limit) is the caller's business.
- Every write is its own transaction, so a killed run keeps what was written. WAL mode: readers
  never wait for a writer, and several processes can share one file. One connection behind a
  lock, usable from worker threads (`asyncio.to_thread`). The file is opened on first use.

Failure policy, the same for every cache; nothing here ever raises into the caller:
- a file that is not a readable SQLite database (garbage, a truncated or malformed file) is
  moved aside to `<name>.corrupt` (or `.corrupt-2`, ...; its -wal and -shm files with it), never
  deleted, with ONE warning line, and a fresh cache starts in its place;
- any other failure (a lock held past `busy_timeout_s`, a read-only or vanished file, a full
  disk, a path that cannot be a file) turns the cache off for the rest of the process with ONE
  warning line: lookups miss, writes are dropped, `problem` says why. A readable cache is
  never moved, emptied or deleted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

R = TypeVar("R")
log = logging.getLogger(__name__)

_SIDE_FILES = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class Entry:
    value: str
    created: float  # unix time of the write


def _corrupt(error: BaseException) -> bool:
    """SQLite's own verdict that the file is no database or a damaged one; not a file it cannot
    get at now (locked, read-only, missing) nor a misuse, which must never cost the file."""
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


class SqliteCache:
    def __init__(
        self,
        path: str | Path,
        *,
        table: str,
        labels: tuple[str, ...] = (),
        what: str = "cache",
        busy_timeout_s: float = 2.0,
        on_open: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        """`what` names the cache in warnings ("judge cache"); `on_open(conn)` runs once the
        table exists (a caller adopts rows of an older layout there)."""
        if not all(name.isidentifier() for name in (table, *labels)):
            raise ValueError(f"table and label names must be identifiers: {table}, {labels}")
        self.path = Path(path)
        self.table = table
        self.labels = labels
        self.what = what
        self.busy_timeout_s = busy_timeout_s
        self.on_open = on_open
        self.problem: str | None = None  # why the cache is off, once it is
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        columns = "".join(f", {name} TEXT NOT NULL" for name in labels)
        self._schema = (
            f"CREATE TABLE IF NOT EXISTS {table} "
            f"(key TEXT PRIMARY KEY{columns}, created REAL NOT NULL, value TEXT NOT NULL)"
        )
        marks = ", ".join("?" * (len(labels) + 3))
        self._insert = f"INSERT OR REPLACE INTO {table} VALUES ({marks})"
        self._select = f"SELECT value, created FROM {table} WHERE key = ?"

    def __repr__(self) -> str:
        state = f"off: {self.problem}" if self.problem else "on"
        return f"SqliteCache({str(self.path)!r}, {self.table}, {state})"

    @property
    def available(self) -> bool:
        return self.problem is None

    def get(self, key: str) -> Entry | None:
        row: Any = self._run(lambda conn: conn.execute(self._select, (key,)).fetchone())
        return None if row is None else Entry(value=row[0], created=row[1])

    def put(self, key: str, value: str, **labels: str) -> None:
        if set(labels) != set(self.labels):
            raise TypeError(f"{self.what}: put() needs the labels {self.labels}, got {labels}")
        row = (key, *(labels[name] for name in self.labels), time.time(), value)
        self._run(lambda conn: conn.execute(self._insert, row))

    def __len__(self) -> int:
        count = f"SELECT count(*) FROM {self.table}"
        row: Any = self._run(lambda conn: conn.execute(count).fetchone())
        return 0 if row is None else int(row[0])

    def close(self) -> None:
        with self._lock:
            self._close()

    # -- under the lock ------------------------------------------------------------------

    def _run(self, statement: Callable[[sqlite3.Connection], R]) -> R | None:
        """`statement(conn)`'s result, or None once the cache is off (see the failure policy)."""
        with self._lock:
            for fresh_start in (False, True):
                if self.problem:
                    return None
                try:
                    return statement(self._connection())
                except (sqlite3.Error, OSError) as e:
                    if _corrupt(e) and not fresh_start and self._move_aside(e):
                        continue  # once: a new file that fails too turns the cache off
                    self._turn_off(e)
            return None

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
                conn.execute(self._schema)
                if self.on_open is not None:
                    self.on_open(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _move_aside(self, error: BaseException) -> bool:
        """Keep an unreadable file under another name and start afresh; False if it cannot be
        moved (then the cache goes off instead)."""
        self._close()
        aside = self.path.with_name(self.path.name + ".corrupt")
        n = 1
        while aside.exists():
            n += 1
            aside = self.path.with_name(f"{self.path.name}.corrupt-{n}")
        try:
            os.replace(self.path, aside)
        except OSError:
            return False
        for suffix in _SIDE_FILES:  # a stale WAL must not be replayed into the new file
            side = self.path.with_name(self.path.name + suffix)
            with contextlib.suppress(OSError):
                os.replace(side, aside.with_name(aside.name + suffix))
        log.warning(
            "%s %s is not a readable SQLite file (%s); kept it as %s and started a new one",
            self.what,
            self.path,
            error,
            aside.name,
        )
        return True

    def _turn_off(self, error: BaseException) -> None:
        self.problem = f"{type(error).__name__}: {error}"
        log.warning(
            "%s %s is unusable (%s); going on without a cache", self.what, self.path, self.problem
        )
        self._close()

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
