"""The README's import rule, checked: each layer of the package imports only the layers before it

    errors, io, progress · profiles, types, config  ←  llm, tools, eval  ←  agents  ←  world
    ←  runtime  ←  train  ←  cli

(imports inside functions included: a deferred import is still a dependency)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "src" / "wideseek"
LAYERS = [
    {"errors", "io", "progress"},
    {"profiles", "types", "config"},
    {"llm", "tools", "eval"},
    {"agents"},
    {"world"},
    {"runtime"},
    {"train"},
    {"cli"},
]
RANK = {name: level for level, names in enumerate(LAYERS) for name in names}


def _top(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def test_every_import_goes_down_the_layers():
    upward = []
    for path in PACKAGE.rglob("*.py"):
        layer = RANK.get(_top(path))
        if layer is None:  # __init__, __main__ and the modules outside the layers
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("wideseek."):
                target = RANK.get(node.module.split(".")[1])
                if target is not None and target > layer:
                    upward.append(f"{path.relative_to(PACKAGE)} imports {node.module}")
    assert upward == []
