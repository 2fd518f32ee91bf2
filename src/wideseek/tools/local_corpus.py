"""`LocalCorpus`: a SearchBackend doing BM25 (bm25s) over a JSONL corpus of pages.

Corpus format: one JSON object per line, `{"id", "url", "title", "text"}` (blank lines are
skipped). A missing file, a bad JSON line or a missing/mistyped field raises `CorpusError` with
`file:line: what`. Title and text are indexed together; see `text_analysis` for the terms.

The index is cached on disk in `<corpus>.bm25/` and tagged with a fingerprint of the corpus
(size, mtime, sha256 of the bytes) and of the text analysis. On load the cache is used when the
sha256 and analysis match, rebuilt when the corpus changed, and rebuilt with a warning when it is
unreadable or partial; a new cache is built in a temporary directory and renamed into place, so a
crash never leaves a half-written index behind. The corpus itself is always read (pages are
needed for snippets and `access`), which also yields the sha256 in the same pass.

Retrieval and snippet cutting are synchronous CPU work (2-5 ms a query over 20k pages on a
busy 2-core machine, see bench/search.py), so `search` runs them in a worker thread: the event
loop stays free for the other agents, and concurrent queries overlap (numpy releases the GIL),
which measured 1.3-1.7x the inline throughput on two cores.

It knows nothing about tools, prompts or HTTP.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
from bm25s.tokenization import Tokenizer

from wideseek.errors import DataError
from wideseek.io import atomic_write_dir, parse_jsonl_lines
from wideseek.tools.base import Page, SearchHit
from wideseek.tools.text_analysis import Analyzer, best_snippet, split_words

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the on-disk layout changes
_META = "meta.json"
_FIELDS = ("url", "title", "text")


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the `k` highest scores, highest first, equal scores in index order.

    bm25s's own selection (argpartition, then argsort) orders equal scores by how numpy's
    sort runs on the CPU at hand (its AVX2 and AVX-512 kernels differ), so the same query
    ranked tied pages differently on two machines, and the oracle's demonstrations, made
    from what its searches return, came out different (issue 24). Here the cut is taken by
    value and the ties broken by page index, which every machine does the same way."""
    n = len(scores)
    k = min(k, n)
    if k <= 0:
        return np.empty(0, dtype=np.intp)
    kth = np.partition(scores, n - k)[n - k]  # the k-th highest value (a value: no tie order)
    candidates = np.flatnonzero(scores >= kth)
    return candidates[np.lexsort((candidates, -scores[candidates]))][:k]


class CorpusError(DataError):
    """A corpus file that cannot be used; the message says which file and line."""


@dataclass(frozen=True)
class CorpusFingerprint:
    size: int
    mtime_ns: int
    sha256: str


def url_key(url: str) -> str:
    """The lookup key of a URL: tolerant of http/https and a trailing slash."""
    key = url.strip()
    for scheme in ("https://", "http://"):
        if key.lower().startswith(scheme):
            key = key[len(scheme) :]
            break
    return key.rstrip("/")


def read_corpus(path: Path) -> tuple[list[Page], CorpusFingerprint]:
    """All pages of a JSONL corpus, and its fingerprint (read in one pass)."""
    digest = hashlib.sha256()

    def hashed(lines: Iterable[bytes]) -> Iterator[bytes]:
        for line in lines:
            digest.update(line)
            yield line

    try:
        with path.open("rb") as f:
            stat = os.fstat(f.fileno())
            records = parse_jsonl_lines(
                path, hashed(f), torn_tail=False, error=CorpusError, not_json="invalid JSON"
            )
            pages = [_page(path, lineno, record) for lineno, record in records]
    except OSError as e:
        raise CorpusError(f"{path}: cannot read corpus ({e.strerror})") from e
    if not pages:
        raise CorpusError(f"{path}: corpus has no pages")
    return pages, CorpusFingerprint(stat.st_size, stat.st_mtime_ns, digest.hexdigest())


def _page(path: Path, lineno: int, record: Any) -> Page:
    if not isinstance(record, dict):
        raise CorpusError(f"{path}:{lineno}: expected a JSON object")
    for field in ("id", *_FIELDS):
        if field not in record:
            raise CorpusError(f"{path}:{lineno}: missing field {field!r}")
    if not isinstance(record["id"], str | int):
        raise CorpusError(f"{path}:{lineno}: field 'id' must be a string or an integer")
    for field in _FIELDS:
        if not isinstance(record[field], str):
            raise CorpusError(f"{path}:{lineno}: field {field!r} must be a string")
    if not record["url"].strip():
        raise CorpusError(f"{path}:{lineno}: empty url")
    return Page(url=record["url"], title=record["title"], text=record["text"])


class LocalCorpus:
    """BM25 search and exact-URL access over a JSONL corpus, with an on-disk index cache."""

    def __init__(
        self,
        path: str | Path,
        *,
        snippet_chars: int = 600,
        cache_dir: str | Path | None = None,
        stem: bool = True,
    ) -> None:
        self.path = Path(path)
        self.snippet_chars = snippet_chars
        self.cache_dir = (
            Path(cache_dir) if cache_dir else self.path.with_name(self.path.name + ".bm25")
        )
        self.analyzer = Analyzer(stem=stem)
        self.pages, self.fingerprint = read_corpus(self.path)
        self._by_url: dict[str, int] = {}
        for i, page in enumerate(self.pages):
            self._by_url.setdefault(page.url, i)  # the first page wins for duplicate URLs
            self._by_url.setdefault(url_key(page.url), i)
        self.built_index = False  # True when this instance (re)built the cache
        self._tokenizer, self._retriever = self._load_or_build()

    # -- SearchBackend -------------------------------------------------------------------

    async def search(self, query: str, k: int) -> list[SearchHit]:
        return await asyncio.to_thread(self.search_sync, query, k)

    async def access(self, url: str) -> Page | None:
        i = self._by_url.get(url, self._by_url.get(url_key(url)))
        return None if i is None else self.pages[i]

    # -- search --------------------------------------------------------------------------

    def rank(self, query: str, k: int) -> list[tuple[int, float]]:
        """(page index, BM25 score) of the top-`k` pages sharing at least one term with `query`."""
        k = max(1, min(k, len(self.pages)))
        ids = self._tokenizer.tokenize(
            [query], update_vocab=False, return_as="ids", show_progress=False
        )[0]
        ids = [i for i in ids if i != self._empty_id]
        if not ids:
            return []
        scores = self._retriever.get_scores(ids)  # (pages,)
        return [(int(doc), float(scores[doc])) for doc in top_k(scores, k) if scores[doc] > 0]

    def search_sync(self, query: str, k: int) -> list[SearchHit]:
        """Top-`k` pages for `query` with query-relevant snippets."""
        query_terms = self.analyzer.terms(query)
        hits = []
        for doc, score in self.rank(query, k):
            page = self.pages[doc]
            snippet = best_snippet(page.text, query_terms, self.analyzer, self.snippet_chars)
            hits.append(SearchHit(url=page.url, title=page.title, snippet=snippet, score=score))
        return hits

    # -- index cache ---------------------------------------------------------------------

    def _meta(self) -> dict[str, Any]:
        return {
            "format": CACHE_FORMAT,
            "analyzer": self.analyzer.name,
            "corpus": {
                "size": self.fingerprint.size,
                "mtime_ns": self.fingerprint.mtime_ns,
                "sha256": self.fingerprint.sha256,
            },
            "num_docs": len(self.pages),
        }

    def _new_tokenizer(self) -> Tokenizer:
        return Tokenizer(
            lower=True,
            splitter=split_words,
            stopwords=sorted(self.analyzer.stopwords),
            stemmer=self.analyzer.stem_word if self.analyzer.stems else None,
        )

    def _load_or_build(self) -> tuple[Tokenizer, bm25s.BM25]:
        loaded = self._try_load()
        if loaded is not None:
            return loaded
        self.built_index = True
        return self._build_and_save()

    def _try_load(self) -> tuple[Tokenizer, bm25s.BM25] | None:
        meta_path = self.cache_dir / _META
        if not self.cache_dir.exists():
            return None
        want = self._meta()
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            log.warning("BM25 cache %s is unreadable (%s); rebuilding it", self.cache_dir, e)
            return None
        same_corpus = (
            isinstance(meta, dict)
            and meta.get("corpus", {}).get("sha256") == want["corpus"]["sha256"]
            and meta.get("format") == want["format"]
            and meta.get("analyzer") == want["analyzer"]
        )
        if not same_corpus:
            log.info("corpus or analysis changed since %s was built; rebuilding", self.cache_dir)
            return None
        try:
            tokenizer = self._new_tokenizer()
            tokenizer.load_vocab(str(self.cache_dir))
            retriever = bm25s.BM25.load(str(self.cache_dir), show_progress=False, verbosity=0)
            if retriever.scores["num_docs"] != len(self.pages):
                raise ValueError("document count does not match the corpus")
        except Exception as e:  # any damage to bm25s's files means: rebuild
            log.warning("BM25 cache %s is damaged (%s); rebuilding it", self.cache_dir, e)
            return None
        self._empty_id = tokenizer.word_to_id.get("", -1)
        return tokenizer, retriever

    def _build_and_save(self) -> tuple[Tokenizer, bm25s.BM25]:
        tokenizer = self._new_tokenizer()
        docs = [f"{p.title}\n{p.text}" for p in self.pages]
        tokens = tokenizer.tokenize(docs, update_vocab=True, return_as="tuple", show_progress=False)
        retriever = bm25s.BM25()
        retriever.index(tokens, show_progress=False)
        self._empty_id = tokenizer.word_to_id.get("", -1)
        self._save(tokenizer, retriever)
        return tokenizer, retriever

    def _save(self, tokenizer: Tokenizer, retriever: bm25s.BM25) -> None:
        """Write the cache atomically (`io.atomic_write_dir`); a cache that cannot be written
        costs a rebuild next time, never the search."""

        def write(tmp: Path) -> None:
            retriever.save(str(tmp), show_progress=False)
            tokenizer.save_vocab(str(tmp))
            # meta.json last: its presence marks a complete cache.
            (tmp / _META).write_text(json.dumps(self._meta(), indent=1), encoding="utf-8")

        try:
            atomic_write_dir(write, self.cache_dir)
        except OSError as e:
            log.warning("cannot write the BM25 cache %s (%s)", self.cache_dir, e)
