"""The package holds no empty placeholder: a newcomer looking for code there finds none."""

from __future__ import annotations

from pathlib import Path

import wideseek

ROOT = Path(wideseek.__file__).parent


def test_every_package_holds_code():
    empty = [
        str(init.parent.relative_to(ROOT))
        for init in ROOT.rglob("__init__.py")
        if not init.read_text().strip()
        and [p.name for p in init.parent.iterdir() if p.name != "__pycache__"] == [init.name]
    ]
    assert empty == []
