"""LocalCorpus: BM25 ranking (English and Chinese), snippets, the index cache, bad corpora."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from wideseek.tools.local_corpus import CorpusError, LocalCorpus, top_k, url_key

PAGES = [
    {
        "id": "paris",
        "url": "https://example.org/wiki/Paris",
        "title": "Paris",
        "text": "Paris is known for museums and cafes. The Louvre opened in 1793. "
        "Paris is the capital of France and its largest city.",
    },
    {
        "id": "berlin",
        "url": "https://example.org/wiki/Berlin",
        "title": "Berlin",
        "text": "Berlin is the capital of Germany. Its wall fell in 1989.",
    },
    {
        "id": "beijing",
        "url": "https://example.org/wiki/北京",
        "title": "北京",
        "text": "北京是中华人民共和国的首都。故宫位于北京市中心。",
    },
    {
        "id": "shanghai",
        "url": "https://example.org/wiki/上海",
        "title": "上海",
        "text": "上海是中国最大的城市之一，有著名的外滩。",
    },
    {
        "id": "rivers",
        "url": "http://example.org/rivers/",
        "title": "Rivers of Europe",
        "text": "The Danube flows through Vienna and Budapest. The Rhine runs past Cologne.",
    },
]


def write_corpus(path: Path, pages: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(p, ensure_ascii=False) for p in pages) + "\n", "utf-8")
    return path


@pytest.fixture
def corpus_path(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus.jsonl", PAGES)


async def urls(corpus: LocalCorpus, query: str, k: int = 3) -> list[str]:
    return [h.url for h in await corpus.search(query, k)]


async def test_english_queries_rank_the_matching_page_first(corpus_path: Path) -> None:
    corpus = LocalCorpus(corpus_path)
    assert (await urls(corpus, "capital of Germany"))[0].endswith("/Berlin")
    assert (await urls(corpus, "Louvre museums"))[0].endswith("/Paris")
    # Stemming (when available) or exact words: "flows" / "Danube" hit the rivers page.
    assert (await urls(corpus, "danube river"))[0] == "http://example.org/rivers/"


async def test_chinese_queries_match_without_spaces(corpus_path: Path) -> None:
    corpus = LocalCorpus(corpus_path)
    assert (await urls(corpus, "中国的首都"))[0].endswith("/北京")
    assert (await urls(corpus, "外滩在哪个城市"))[0].endswith("/上海")
    assert (await urls(corpus, "故宫"))[0].endswith("/北京")


async def test_unrelated_query_returns_nothing_and_k_is_respected(corpus_path: Path) -> None:
    corpus = LocalCorpus(corpus_path)
    assert await corpus.search("zzyzx qwerty", 3) == []
    assert await corpus.search("", 3) == []
    assert len(await corpus.search("capital", 1)) == 1
    assert len(await corpus.search("capital", 50)) == 2  # only pages sharing a term


async def test_pages_of_equal_score_come_in_corpus_order(tmp_path: Path) -> None:
    # Equal scores are common in a generated world (pages written from one template); their
    # order must not depend on the CPU's sort kernels, or demonstrations differ by machine.
    twins = [
        {"id": f"t{i}", "url": f"https://example.org/twin/{i}", "title": "Twin",
         "text": "A twin page about the river delta."}
        for i in range(7)
    ]  # fmt: skip
    corpus = LocalCorpus(write_corpus(tmp_path / "twins.jsonl", PAGES + twins))
    assert await urls(corpus, "river delta", 4) == [
        f"https://example.org/twin/{i}" for i in range(4)
    ]
    assert len({h.score for h in await corpus.search("river delta", 7)}) == 1


def test_top_k_cuts_through_a_tie_by_index_and_keeps_the_rest_by_score() -> None:
    scores = np.array([1.0, 3.0, 2.0, 3.0, 2.0, 2.0, 0.0], dtype=np.float32)
    assert top_k(scores, 4).tolist() == [1, 3, 2, 4]
    assert top_k(scores, 10).tolist() == [1, 3, 2, 4, 5, 0, 6]
    assert top_k(scores, 0).tolist() == []


async def test_snippet_is_the_query_relevant_window(corpus_path: Path) -> None:
    corpus = LocalCorpus(corpus_path, snippet_chars=60)
    hit = (await corpus.search("capital of France largest city", 1))[0]
    assert hit.snippet.startswith("Paris is the capital of France")
    assert len(hit.snippet) <= 60
    assert hit.score is not None and hit.score > 0


async def test_access_by_url_tolerates_scheme_and_trailing_slash(corpus_path: Path) -> None:
    corpus = LocalCorpus(corpus_path)
    page = await corpus.access("https://example.org/wiki/Berlin")
    assert page is not None and page.title == "Berlin"
    assert (await corpus.access("http://example.org/wiki/Berlin/")) == page
    assert (await corpus.access("https://example.org/rivers")).title == "Rivers of Europe"
    assert await corpus.access("https://example.org/wiki/Rome") is None
    assert url_key("HTTPS://a.b/c/") == "a.b/c"


def test_index_is_cached_and_reused(corpus_path: Path) -> None:
    first = LocalCorpus(corpus_path)
    meta = corpus_path.with_name("corpus.jsonl.bm25") / "meta.json"
    assert first.built_index and meta.exists()
    stamp = meta.stat().st_mtime_ns
    second = LocalCorpus(corpus_path)
    assert not second.built_index
    assert meta.stat().st_mtime_ns == stamp
    assert not list(corpus_path.parent.glob(".corpus.jsonl.bm25.*"))  # no temp dirs left


async def test_index_is_rebuilt_when_the_corpus_changes(corpus_path: Path) -> None:
    LocalCorpus(corpus_path)
    extra = {
        "id": "rome",
        "url": "https://example.org/wiki/Rome",
        "title": "Rome",
        "text": "Rome is the capital of Italy.",
    }
    write_corpus(corpus_path, [*PAGES, extra])
    corpus = LocalCorpus(corpus_path)
    assert corpus.built_index
    assert (await urls(corpus, "capital of Italy"))[0].endswith("/Rome")
    assert not LocalCorpus(corpus_path).built_index


def test_touching_the_corpus_without_changing_it_keeps_the_cache(corpus_path: Path) -> None:
    LocalCorpus(corpus_path)
    os.utime(corpus_path, ns=(1, 1))
    assert not LocalCorpus(corpus_path).built_index


@pytest.mark.parametrize("damage", ["garbage_meta", "missing_matrix", "truncated_vocab"])
async def test_corrupt_cache_is_rebuilt_with_a_warning(
    corpus_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    LocalCorpus(corpus_path)
    cache = corpus_path.with_name("corpus.jsonl.bm25")
    if damage == "garbage_meta":
        (cache / "meta.json").write_text("{not json", "utf-8")
    elif damage == "missing_matrix":
        (cache / "data.csc.index.npy").unlink()
    else:
        vocab = cache / "vocab.tokenizer.json"
        vocab.write_text(vocab.read_text("utf-8")[:20], "utf-8")
    with caplog.at_level(logging.WARNING, logger="wideseek.tools.local_corpus"):
        corpus = LocalCorpus(corpus_path)
    assert corpus.built_index
    assert "rebuilding" in caplog.text
    assert (await urls(corpus, "capital of Germany"))[0].endswith("/Berlin")
    assert not LocalCorpus(corpus_path).built_index


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"id": "a", "url": "u", "title": "t", "text": "x"}\n{oops\n',
            "corpus.jsonl:2: invalid JSON",
        ),
        ('{"id": "a", "url": "u", "text": "x"}\n', "corpus.jsonl:1: missing field 'title'"),
        ('{"id": "a", "url": "u", "title": 3, "text": "x"}\n', "field 'title' must be a string"),
        ('["a list"]\n', "corpus.jsonl:1: expected a JSON object"),
        ('{"url": "u", "title": "t", "text": "x"}\n', "corpus.jsonl:1: missing field 'id'"),
        ('{"id": null, "url": "u", "title": "t", "text": "x"}\n', "'id' must be a string or"),
        ('{"id": 1, "url": " ", "title": "t", "text": "x"}\n', "corpus.jsonl:1: empty url"),
        ("\n\n", "corpus has no pages"),
    ],
)
def test_bad_corpus_lines_name_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text(content, "utf-8")
    with pytest.raises(CorpusError, match=message):
        LocalCorpus(path)


def test_missing_corpus_file_is_a_corpus_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="cannot read corpus"):
        LocalCorpus(tmp_path / "nope.jsonl")


def test_index_is_rebuilt_when_the_text_analysis_changes(corpus_path: Path) -> None:
    stemmed = LocalCorpus(corpus_path, stem=True)
    if not stemmed.analyzer.stems:
        pytest.skip("PyStemmer is not installed: both analyses are the same")
    assert LocalCorpus(corpus_path, stem=False).built_index
    assert LocalCorpus(corpus_path, stem=True).built_index


async def test_concurrent_searches_agree_with_sequential_ones(corpus_path: Path) -> None:
    corpus = LocalCorpus(corpus_path)
    queries = ["capital of Germany", "中国的首都", "Danube Vienna", "Louvre"] * 5
    sequential = [corpus.search_sync(q, 3) for q in queries]
    assert list(await asyncio.gather(*(corpus.search(q, 3) for q in queries))) == sequential


def test_non_utf8_line_is_a_corpus_error(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(b'{"id": "a", "url": "u", "title": "t", "text": "x"}\n{"id": "\xff"}\n')
    with pytest.raises(CorpusError, match=r"corpus\.jsonl:2: not UTF-8"):
        LocalCorpus(path)
