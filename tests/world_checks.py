"""Checks of a world's corpus file shared by the build tests (fresh builds, need the fact
packages) and the shipped-world tests (run everywhere): each returns the problems it found."""

from __future__ import annotations

import json
from pathlib import Path

from wideseek.world.pages import BASE_URL, PAGE_TOKEN_BUDGET, approx_tokens

RECORD_KEYS = ["id", "url", "title", "text"]  # the runtime's local corpus record


def corpus_problems(corpus: Path) -> list[str]:
    """Runtime corpus records, unique ids and URLs in the project's scheme, short pages, long
    lists split into parts, Chinese pages, and the distractors search must see past."""
    with corpus.open(encoding="utf-8") as f:
        pages = [json.loads(line) for line in f]
    problems = [f"{p.get('url')}: keys {sorted(p)}" for p in pages if list(p) != RECORD_KEYS]
    if not len({p["id"] for p in pages}) == len({p["url"] for p in pages}) == len(pages):
        problems.append("page ids or URLs repeat")
    problems += [
        f"{p['url']}: not under {BASE_URL}" for p in pages if not p["url"].startswith(BASE_URL)
    ]
    problems += [
        f"{p['url']}: {approx_tokens(p['text'])} tokens"
        for p in pages
        if approx_tokens(p["text"]) > PAGE_TOKEN_BUDGET
    ]
    problems += [f"{p['url']}: no title or text" for p in pages if not (p["title"] and p["text"])]
    urls = [p["url"] for p in pages]
    expected = {
        "long lists in parts": any(u.endswith("/part-2") for u in urls),
        "Chinese pages": any("/zh/" in u for u in urls),
        # A smaller namesake's URL ends in its GeoNames id (".../city/<name>-<cc>-<id>").
        "namesake cities": any(
            u.rsplit("-", 1)[-1].isdigit() for u in urls if u.startswith(f"{BASE_URL}/city/")
        ),
        "currencies of other years": any(u.endswith("/currency-history") for u in urls),
    }
    problems += [f"no {what}" for what, found in expected.items() if not found]
    return problems
