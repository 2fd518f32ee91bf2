"""Find, verify and unpack worlds; pack one into the package as the shipped default.

Contract: `load_world(dir)` returns a `World` (paths of the corpus, the task files and gold
directories per split, and the manifest). With no directory it uses the world shipped in
`wideseek/assets/world/` (a deterministic tar.gz + its manifest): it is unpacked once into
`$WIDESEEK_CACHE` or `~/.cache/wideseek/world/<hash>`, atomically (temp dir + rename), and
unpacked again when the cached copy fails its manifest's sha256 check. `pack_world` writes that
archive. Nothing here needs the fact packages, and nothing reads /work/shared or any network.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from filelock import FileLock
from pydantic import ValidationError

from wideseek.io import atomic_write_bytes, atomic_write_dir, cache_home
from wideseek.world.build import MANIFEST, Manifest, WorldError, hash_files
from wideseek.world.wide_tasks import SPLITS

ARCHIVE = "world.tar.gz"


@dataclass(frozen=True)
class World:
    root: Path
    manifest: Manifest

    @property
    def corpus_path(self) -> Path:
        return self.root / "corpus.jsonl"

    def wide_tasks(self, split: str) -> Path:
        return self.root / "wide" / f"{_check_split(split)}.jsonl"

    def wide_meta(self, split: str) -> Path:
        return self.root / "wide" / f"{_check_split(split)}.meta.jsonl"

    def wide_gold_dir(self, split: str) -> Path:
        return self.root / "wide" / "gold" / _check_split(split)

    def deep_tasks(self, split: str) -> Path:
        return self.root / "deep" / f"{_check_split(split)}.jsonl"

    def deep_meta(self, split: str) -> Path:
        return self.root / "deep" / f"{_check_split(split)}.meta.jsonl"


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise WorldError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return split


def read_manifest(root: Path) -> Manifest:
    path = root / MANIFEST
    try:
        return Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise WorldError(f"{root} is not a world directory (no {MANIFEST})") from e
    except (ValidationError, ValueError) as e:
        raise WorldError(f"{path} is not a valid world manifest: {e.__class__.__name__}") from e


def listed_files(root: Path, manifest: Manifest) -> list[Path]:
    """The files the manifest vouches for: each file it lists, every file of a gold folder."""
    paths: list[Path] = []
    for name in manifest.files:
        path = root / name
        paths += [p for p in path.iterdir() if p.is_file()] if name.endswith("/") else [path]
    return sorted(paths)


def verify(root: Path, manifest: Manifest) -> bool:
    """True when every file listed in the manifest is present with its recorded hash. Files it
    does not list are not looked at: the search index a run builds beside the corpus
    (`corpus.jsonl.bm25/`) lives in the world's copy and must not make that copy look corrupt
    (every process would unpack it again, replacing it under the runs reading it)."""
    try:
        return hash_files(root, listed_files(root, manifest)) == manifest.files
    except OSError:
        return False


def load_world(dir: str | Path | None = None) -> World:
    if dir is not None:
        root = Path(dir)
        return World(root=root, manifest=read_manifest(root))
    root = _unpacked_default()
    return World(root=root, manifest=read_manifest(root))


def shipped_asset_dir() -> Path:
    return Path(str(resources.files("wideseek") / "assets" / "world"))


def cache_root() -> Path:
    return cache_home() / "world"


def _unpacked_default() -> Path:
    assets = shipped_asset_dir()
    if not (assets / ARCHIVE).exists():
        raise WorldError(f"no shipped world in {assets}; build one with `wideseek world build`")
    shipped = read_manifest(assets)
    target = cache_root() / shipped.world_hash[:16]
    if _unpacked(target, shipped):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # One process unpacks, the others wait for it and take its copy: without the lock a second
    # process replaced a copy a first one was reading ("does not match its manifest").
    with FileLock(f"{target}.lock"):
        if not _unpacked(target, shipped):
            _extract(assets / ARCHIVE, target)
            if not verify(target, shipped):
                raise WorldError(f"shipped world {assets / ARCHIVE} does not match its manifest")
    return target


def _unpacked(target: Path, shipped: Manifest) -> bool:
    """A complete, unaltered copy of the shipped world is at `target`."""
    try:
        return target.is_dir() and read_manifest(target) == shipped and verify(target, shipped)
    except (WorldError, OSError):
        return False


def _extract(archive: Path, target: Path) -> None:
    """Unpack `archive` in place of whatever `target` holds (a corrupt copy, or nothing)."""

    def unpack(tmp: Path) -> None:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(tmp, filter="data")

    try:
        atomic_write_dir(unpack, target)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise WorldError(f"cannot unpack {archive}: {e}") from e


def pack_world(world_dir: str | Path, asset_dir: str | Path | None = None) -> Path:
    """Write `world.tar.gz` (byte-deterministic: sorted, zero mtimes/owners) + manifest copy.
    It holds the manifest and the files it lists, never a search index built beside them."""
    root = Path(world_dir)
    manifest = read_manifest(root)
    if not verify(root, manifest):
        raise WorldError(f"{root} does not match its manifest; rebuild it before packing")
    dest = Path(asset_dir) if asset_dir else shipped_asset_dir()
    dest.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=9) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in sorted([root / MANIFEST, *listed_files(root, manifest)]):
            info = tarfile.TarInfo(path.relative_to(root).as_posix())
            data = path.read_bytes()
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    atomic_write_bytes(dest / ARCHIVE, buf.getvalue())
    atomic_write_bytes(dest / MANIFEST, (root / MANIFEST).read_bytes())
    return dest / ARCHIVE
