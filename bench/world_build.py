"""Time the world build stage by stage and print the figures (no assertions).

Usage: PYTHONPATH=src python bench/world_build.py [SEED]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from wideseek.world import build_world
from wideseek.world.store import pack_world


def main(seed: int) -> None:
    marks: list[tuple[str, float]] = []
    start = time.perf_counter()

    def step(stage: str, n: int) -> None:
        marks.append((stage, time.perf_counter()))

    with tempfile.TemporaryDirectory() as tmp:
        manifest = build_world(Path(tmp) / "w", seed=seed, progress=step)
        built = time.perf_counter()
        archive = pack_world(Path(tmp) / "w", Path(tmp) / "asset")
        packed = time.perf_counter()
        size = archive.stat().st_size
    ends = [t for _, t in marks[1:]] + [built]
    print(f"{'stage':32} {'seconds':>8}")
    for (stage, t0), t1 in zip(marks, ends, strict=True):
        print(f"{stage:32} {t1 - t0:8.2f}")
    print(f"{'total build':32} {built - start:8.2f}")
    print(f"{'pack (tar.gz)':32} {packed - built:8.2f}")
    c = manifest.counts
    print(f"pages {c['pages']}, entities {c['entities_total']}, facts {c['facts']}")
    print(f"archive {size / 1e6:.2f} MB; hash {manifest.world_hash[:16]}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
