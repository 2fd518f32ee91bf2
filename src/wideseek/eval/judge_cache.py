"""On-disk cache of judge completions, keyed by (model, prompt), so re-scoring costs nothing.

Contract: `get(model, prompt)` / `put(model, prompt, text)` over one SQLite file, through
`wideseek.sqlite_cache.SqliteCache`, whose failure policy this is: an unreadable file is moved
aside to `<name>.corrupt` (kept) and a fresh cache started; a cache that cannot be used (locked,
read-only) is off for the run after one warning. A broken cache costs judge calls, never a
crash. Replies cached by earlier versions (table `completions`) are adopted on first open.
Knows nothing about HTTP or prompts.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from wideseek.sqlite_cache import SqliteCache

TABLE = "judge_replies"
_LEGACY = "completions"  # (key, model, text), before the shared SQLite cache


def cache_key(model: str, prompt: str) -> str:
    return hashlib.sha256(f"{model}\0{prompt}".encode()).hexdigest()


def _adopt_legacy(conn: sqlite3.Connection) -> None:
    """Move the replies of the older layout into the current table, in one transaction."""
    known = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (_LEGACY,)).fetchone()
    if known is None:
        return
    with conn:  # BEGIN ... COMMIT: copied and dropped together, or neither
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            f"INSERT OR IGNORE INTO {TABLE} (key, model, created, value) "
            f"SELECT key, model, 0, text FROM {_LEGACY} WHERE text IS NOT NULL"
        )
        conn.execute(f"DROP TABLE {_LEGACY}")


class JudgeCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._store = SqliteCache(
            self.path, table=TABLE, labels=("model",), what="judge cache", on_open=_adopt_legacy
        )

    def get(self, model: str, prompt: str) -> str | None:
        entry = self._store.get(cache_key(model, prompt))
        return None if entry is None else entry.value

    def put(self, model: str, prompt: str, text: str) -> None:
        self._store.put(cache_key(model, prompt), text, model=model)

    def __len__(self) -> int:
        return len(self._store)

    def close(self) -> None:
        self._store.close()
