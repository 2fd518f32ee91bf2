"""The one SQLite cache's failure policy: an unreadable file is kept aside with one warning and a
fresh cache starts; a readable one that cannot be used now is never moved, the cache goes off."""

from __future__ import annotations

import logging
import sqlite3

import pytest

from wideseek.sqlite_cache import SqliteCache

GARBAGE = b"this is not a database, just bytes " * 200


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def new_cache(path, **kw) -> SqliteCache:
    return SqliteCache(path, table="entries", labels=("model",), what="test cache", **kw)


def test_round_trip_and_labels(tmp_path):
    cache = new_cache(tmp_path / "c.sqlite")
    assert cache.get("k") is None
    cache.put("k", "v", model="m")
    entry = cache.get("k")
    assert entry is not None and entry.value == "v" and entry.created > 0
    with pytest.raises(TypeError, match="labels"):
        cache.put("k", "v")
    cache.close()
    with sqlite3.connect(tmp_path / "c.sqlite") as db:
        assert db.execute("SELECT key, model, value FROM entries").fetchall() == [("k", "m", "v")]


def test_a_corrupt_file_is_kept_aside_once_with_one_warning(tmp_path, caplog):
    path = tmp_path / "c.sqlite"
    path.write_bytes(GARBAGE)
    cache = new_cache(path)
    with caplog.at_level(logging.WARNING):
        assert cache.get("k") is None
        cache.put("k", "v", model="m")
        assert cache.get("k").value == "v"
    assert cache.available
    [line] = warnings(caplog)
    assert (
        "test cache" in line and "not a readable SQLite file" in line and "c.sqlite.corrupt" in line
    )
    assert (tmp_path / "c.sqlite.corrupt").read_bytes() == GARBAGE  # kept as it was
    cache.close()
    path.write_bytes(GARBAGE)  # a second broken file does not overwrite the first one kept
    assert len(new_cache(path)) == 0
    assert (tmp_path / "c.sqlite.corrupt-2").read_bytes() == GARBAGE


def test_damage_found_after_opening_is_handled_the_same_way(tmp_path, caplog):
    path = tmp_path / "c.sqlite"
    cache = new_cache(path)
    for i in range(2000):
        cache.put(f"k{i}", "v" * 200, model="m")
    cache.close()
    cache = new_cache(path)
    assert cache.get("k1") is not None  # open and readable
    with sqlite3.connect(path) as db:  # fold the WAL in, so the damage below is seen
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    page = 4096
    data[page * 3 : page * 40] = GARBAGE[: page * 37].ljust(page * 37, b"x")
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        assert len(cache) == 0  # the count found the damage: a new, empty cache
        cache.put("k", "v", model="m")
    assert cache.get("k").value == "v"
    assert len(warnings(caplog)) == 1 and (tmp_path / "c.sqlite.corrupt").exists()


def test_a_locked_readable_cache_is_left_alone_and_the_cache_goes_off(tmp_path, caplog):
    path = tmp_path / "c.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE other (x)")
    holder.execute("INSERT INTO other VALUES (1)")
    holder.execute("BEGIN EXCLUSIVE")  # another process mid-write
    try:
        cache = new_cache(path, busy_timeout_s=0.05)
        with caplog.at_level(logging.WARNING):
            for _ in range(3):
                assert cache.get("k") is None
                cache.put("k", "v", model="m")
        assert not cache.available and "database is locked" in (cache.problem or "")
        [line] = warnings(caplog)
        assert "going on without a cache" in line
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not list(tmp_path.glob("*.corrupt*"))
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT x FROM other").fetchall() == [(1,)]


def test_a_path_that_cannot_be_a_file_turns_the_cache_off(tmp_path, caplog):
    (tmp_path / "c.sqlite").mkdir()
    cache = new_cache(tmp_path / "c.sqlite")
    with caplog.at_level(logging.WARNING):
        assert cache.get("k") is None
        cache.put("k", "v", model="m")
    assert not cache.available and len(warnings(caplog)) == 1
    assert (tmp_path / "c.sqlite").is_dir()
