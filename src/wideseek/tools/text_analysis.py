"""How text becomes search terms, and how a query-relevant snippet is cut from a page.

One `Analyzer` serves both the BM25 index (as the splitter/stemmer/stopwords of a bm25s
Tokenizer) and snippet selection, so a snippet is chosen with exactly the terms that ranked the
page. Latin-script text is lower-cased, split into words and (when PyStemmer is installed)
Snowball-stemmed; CJK text has no spaces, so each run of CJK characters becomes its overlapping
character bigrams (a lone character stays a unigram) — the usual CJK bigram scheme, which lets
a Chinese query match without a word segmenter.

This module knows nothing about corpora, caches or tools.
"""

from __future__ import annotations

import re
import threading

from bm25s.stopwords import STOPWORDS_EN

try:  # optional: better English recall; the index records whether it was used
    import Stemmer
except ImportError:  # pragma: no cover - depends on the environment
    Stemmer = None

# Han, kana, hangul and CJK compatibility ideographs.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]{{2,}}|\d", re.UNICODE)
_IS_CJK = re.compile(rf"[{_CJK}]")
# Sentence ends: Latin punctuation followed by space, CJK full stops, or line breaks.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？；])|\n+")


def split_words(text: str) -> list[str]:
    """Raw tokens of already lower-cased text: Latin words, digits, CJK bigrams."""
    out: list[str] = []
    for match in _TOKEN.findall(text):
        if _IS_CJK.match(match) and len(match) > 1:
            out.extend(match[i : i + 2] for i in range(len(match) - 1))
        else:
            out.append(match)
    return out


class Analyzer:
    """Lower-case, split, drop English stopwords, stem. Deterministic for a given `name`."""

    def __init__(self, stem: bool = True) -> None:
        self.stems = stem and Stemmer is not None
        self.stopwords = frozenset(STOPWORDS_EN)
        # PyStemmer objects must not be shared between threads, and searches run in threads.
        self._local = threading.local()
        # word -> stem; snippets re-stem the same words for every sentence of every hit.
        # Plain dict reads/writes are atomic under the GIL, so threads may share it.
        self._stems: dict[str, str] = {}

    @property
    def name(self) -> str:
        """Identifies the analysis; an index built with another analysis must be rebuilt."""
        return "cjk-bigram+en-stop" + ("+snowball-en" if self.stems else "")

    def _stemmer(self):
        stemmer = getattr(self._local, "stemmer", None)
        if stemmer is None:
            stemmer = self._local.stemmer = Stemmer.Stemmer("english")
        return stemmer

    def stem_word(self, word: str) -> str:
        if not self.stems:
            return word
        stem = self._stems.get(word)
        if stem is None:
            stem = self._stems[word] = self._stemmer().stemWord(word)
        return stem

    def terms(self, text: str) -> set[str]:
        return {self.stem_word(w) for w in split_words(text.lower()) if w not in self.stopwords}


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def _join(sentences: list[str]) -> str:
    # CJK sentences are written without a space after the full stop.
    out = sentences[0]
    for s in sentences[1:]:
        out += s if out[-1] in "。！？；" else " " + s
    return out


def best_snippet(text: str, query_terms: set[str], analyzer: Analyzer, max_chars: int) -> str:
    """The sentence sharing most terms with the query, grown with its neighbours to `max_chars`.

    With no overlap at all the page opening is used (it usually says what the page is about).
    """
    sentences = split_sentences(text)
    if not sentences:
        return ""
    overlaps = [len(query_terms & analyzer.terms(s)) for s in sentences]
    best = max(range(len(sentences)), key=lambda i: (overlaps[i], -i))
    if overlaps[best] == 0:
        best = 0
    first, last = best, best
    length = len(sentences[best])
    # Grow forward first (context after a fact usually continues it), then backward.
    while last + 1 < len(sentences) and length + 1 + len(sentences[last + 1]) <= max_chars:
        last += 1
        length += 1 + len(sentences[last])
    while first > 0 and length + 1 + len(sentences[first - 1]) <= max_chars:
        first -= 1
        length += 1 + len(sentences[first])
    snippet = _join(sentences[first : last + 1])
    return snippet if len(snippet) <= max_chars else snippet[: max_chars - 1].rstrip() + "…"
