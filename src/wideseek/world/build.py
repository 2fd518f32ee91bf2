"""Build a world directory: facts -> corpus -> wide and deep suites -> files + manifest.

Contract: `build_world(out_dir, seed, sizes)` writes, atomically (a temp directory next to
`out_dir`, renamed into place), the layout below and returns its `Manifest`. The same seed and
sizes with the same pinned packages give byte-identical files.

    manifest.json                  sources + versions, seed, counts, sha256 of every file
    corpus.jsonl                   {"id","url","title","text"} per page
    wide/<split>.jsonl             WideSearch records (instance_id, query, evaluation, language)
    wide/<split>.meta.jsonl        planning metadata per instance_id (no gold values)
    wide/gold/<split>/<id>.csv     gold tables, human column titles as header
    deep/<split>.jsonl             {"id","question","golden_answers","language"}
    deep/<split>.meta.jsonl        planning metadata per id

This module knows the layout; it does not know how facts, pages or tasks are made.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from wideseek.errors import WideseekError
from wideseek.io import atomic_write_dir
from wideseek.world.deep_tasks import make_deep_suites
from wideseek.world.facts import SOURCE_PACKAGES, load_facts
from wideseek.world.families import enumerate_groups
from wideseek.world.pages import render_corpus
from wideseek.world.wide_tasks import SPLITS, make_wide_suites

FORMAT_VERSION = 1
WIDE_SIZES = {"train": 5000, "dev": 300, "test": 300}
DEEP_SIZES = {"train": 3000, "dev": 300, "test": 300}
MANIFEST = "manifest.json"


class WorldError(WideseekError, RuntimeError):
    """A world directory or archive is missing, foreign or corrupt."""


class Manifest(BaseModel):
    format_version: int = FORMAT_VERSION
    seed: int
    sources: dict[str, str]  # package -> installed (pinned) version
    licences: dict[str, str]
    counts: dict[str, Any]
    files: dict[str, str] = Field(default_factory=dict)  # relative path -> sha256
    world_hash: str = ""


Progress = Callable[[str, int], None]  # (stage description, stage number out of BUILD_STAGES)
BUILD_STAGES = 5


def build_world(
    out_dir: str | Path,
    seed: int = 0,
    wide_sizes: dict[str, int] | None = None,
    deep_sizes: dict[str, int] | None = None,
    progress: Progress | None = None,
) -> Manifest:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise WorldError(f"{out} is a file, not a directory")
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST).exists():
        raise WorldError(f"{out} exists and is not a world directory; refusing to replace it")
    step = progress or (lambda stage, n: None)
    step("reading facts from packages", 1)
    facts = load_facts()
    step("rendering pages", 2)
    corpus = render_corpus(facts, seed)
    step("generating wide tasks", 3)
    groups = list(enumerate_groups(facts, corpus))
    try:
        wide = make_wide_suites(facts, groups, seed, wide_sizes or WIDE_SIZES)
    except ValueError as e:  # more tasks requested than distinct (group, columns) variants
        raise WorldError(str(e)) from e
    step("generating deep tasks", 4)
    deep = make_deep_suites(facts, seed, deep_sizes or DEEP_SIZES)
    for split, wanted in (deep_sizes or DEEP_SIZES).items():
        if len(deep[split]) < wanted:
            raise WorldError(
                f"only {len(deep[split])} deep tasks for {split!r}; {wanted} requested"
            )
    step("writing files", 5)
    made: list[Manifest] = []

    def write(tmp: Path) -> None:
        _write_jsonl(tmp / "corpus.jsonl", (p.record() for p in corpus.pages))
        for split in SPLITS:
            _write_jsonl(tmp / "wide" / f"{split}.jsonl", (t.record for t in wide[split]))
            _write_jsonl(tmp / "wide" / f"{split}.meta.jsonl", (t.meta for t in wide[split]))
            for t in wide[split]:
                _write_csv(
                    tmp / "wide" / "gold" / split / f"{t.record['instance_id']}.csv",
                    t.header,
                    t.rows,
                )
            _write_jsonl(tmp / "deep" / f"{split}.jsonl", (t.record for t in deep[split]))
            _write_jsonl(tmp / "deep" / f"{split}.meta.jsonl", (t.meta for t in deep[split]))
        manifest = Manifest(
            seed=seed,
            sources=facts.versions,
            licences={name: lic for name, (_, lic) in SOURCE_PACKAGES.items()},
            counts={
                "entities": facts.counts(),
                "entities_total": len(facts.entities),
                "facts": facts.fact_total(),
                "pages": len(corpus.pages),
                "wide": {s: len(wide[s]) for s in SPLITS},
                "deep": {s: len(deep[s]) for s in SPLITS},
            },
        )
        manifest.files = hash_files(tmp)
        manifest.world_hash = _digest(json.dumps(manifest.files, sort_keys=True).encode())
        (tmp / MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
        made.append(manifest)

    atomic_write_dir(write, out)  # an old world at `out` goes only once the new one is in
    return made[0]


def hash_files(root: Path, paths: Iterable[Path] | None = None) -> dict[str, str]:
    """sha256 per file of `paths` (default: every file under `root` but the manifest); each
    gold directory is hashed as one entry (thousands of small files)."""
    if paths is None:
        paths = (p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST)
    out: dict[str, str] = {}
    gold: dict[str, list[str]] = {}
    for path in sorted(paths):
        rel = path.relative_to(root).as_posix()
        digest = _digest(path.read_bytes())
        if "/gold/" in rel:
            gold.setdefault(rel.rsplit("/", 1)[0] + "/", []).append(f"{path.name}:{digest}")
        else:
            out[rel] = digest
    for folder, entries in gold.items():
        out[folder] = _digest("\n".join(entries).encode())
    return dict(sorted(out.items()))


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8", newline="")
