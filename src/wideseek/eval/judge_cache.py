"""On-disk cache of judge completions, keyed by (model, prompt), so re-scoring costs nothing.

Contract: `get(model, prompt)` / `put(model, prompt, text)` over one SQLite file. Every write
is its own transaction (atomic; a killed run keeps what was written). A file that is not a
readable cache is moved aside to `<name>.corrupt` (kept, never deleted) and a fresh cache is
started; a read or write that fails later (a locked or vanished file) is logged and treated
as a miss. A broken cache costs judge calls, never a crash. Knows nothing about HTTP or prompts.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from pathlib import Path

log = logging.getLogger(__name__)

_SCHEMA = "CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, model TEXT, text TEXT)"


def cache_key(model: str, prompt: str) -> str:
    return hashlib.sha256(f"{model}\0{prompt}".encode()).hexdigest()


class JudgeCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise IsADirectoryError(f"{self.path}: judge cache path is a directory")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as e:
            aside = self.path.with_name(self.path.name + ".corrupt")
            log.warning("judge cache %s unreadable (%s); moved to %s", self.path, e, aside)
            self.path.replace(aside)
            self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None)  # autocommit: one write, one txn
        try:
            db.execute(_SCHEMA)
            db.execute("SELECT count(*) FROM completions").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def get(self, model: str, prompt: str) -> str | None:
        try:
            row = self._db.execute(
                "SELECT text FROM completions WHERE key = ?", (cache_key(model, prompt),)
            ).fetchone()
        except sqlite3.Error as e:
            log.warning("judge cache %s: read failed (%s); treated as a miss", self.path, e)
            return None
        return None if row is None else row[0]

    def put(self, model: str, prompt: str, text: str) -> None:
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO completions VALUES (?, ?, ?)",
                (cache_key(model, prompt), model, text),
            )
        except sqlite3.Error as e:
            log.warning("judge cache %s: write failed (%s); reply not cached", self.path, e)

    def __len__(self) -> int:
        return self._db.execute("SELECT count(*) FROM completions").fetchone()[0]

    def close(self) -> None:
        self._db.close()
