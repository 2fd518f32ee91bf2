"""The test session's cache root: its own, so tests never leave files in the user's cache.

Tests tokenise throw-away demonstrations, fill web and judge caches and write SFT examples;
all of that went to `~/.cache/wideseek` and stayed there. The session gets a fresh
`$WIDESEEK_CACHE` instead. The two caches that are derived only from files the project ships
and are costly to rebuild — the converted default base (`base/`) and the unpacked world
(`world/`) — link to the user's, so a test run does not convert the GGUF again. A test that
sets `$WIDESEEK_CACHE` itself (monkeypatch) still gets its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from wideseek.io import CACHE_ENV, cache_home

SHARED = ("base", "world")  # built from shipped files only; the same for every run


@pytest.fixture(autouse=True, scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    user = cache_home()
    root = tmp_path_factory.mktemp("wideseek-cache")
    for name in SHARED:
        (user / name).mkdir(parents=True, exist_ok=True)
        (root / name).symlink_to(user / name, target_is_directory=True)
    old = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(root)
    yield root
    if old is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = old
