"""Turning text into index terms: the foundation's tokenizer, English stop words, stems.

A *word* is a folded token (see :mod:`sleigh.core_ext.tokenizer`); a *term* is a
word's English stem (PyStemmer's Snowball ``english``). Stop words are dropped from
documents and queries alike. Documents are indexed as one weighted field: a word
in the title counts :data:`FIELD_WEIGHTS` ``["title"]`` times, and so on, so BM25's
term frequency and document length are weighted sums (a simplified BM25F).
"""

from __future__ import annotations

import threading
from typing import Final

import Stemmer

from .. import tokenize

__all__ = ["FIELD_WEIGHTS", "MAX_TF", "STOP_WORDS", "Analyzer"]

#: How many times an occurrence counts, per field; the title counts most.
FIELD_WEIGHTS: Final = {"title": 4, "brand": 3, "category": 2, "description": 1}

#: Weighted term frequencies are capped to fit one byte.
MAX_TF: Final = 255

#: Words too common in English to mean anything in a shop's search.
STOP_WORDS: Final = frozenset(
    (
        "a",
        "about",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "their",
        "this",
        "to",
        "was",
        "were",
        "will",
        "with",
        "without",
        "your",
        "you",
        "our",
    )
)


class Analyzer:
    """Words and terms of a text; safe to share between threads.

    PyStemmer's stemmers may not be shared between threads, so each thread gets its
    own; stems are remembered in a dictionary bounded by *cache_size*.
    """

    def __init__(self, cache_size: int = 200_000) -> None:
        self._local = threading.local()
        self._cache: dict[str, str] = {}
        self._cache_size = cache_size

    def _stemmer(self) -> Stemmer.Stemmer:
        stemmer: Stemmer.Stemmer | None = getattr(self._local, "stemmer", None)
        if stemmer is None:
            stemmer = Stemmer.Stemmer("english")
            self._local.stemmer = stemmer
        return stemmer

    def stem(self, word: str) -> str:
        """The term of one folded *word*."""
        term = self._cache.get(word)
        if term is None:
            term = self._stemmer().stemWord(word)
            if len(self._cache) < self._cache_size:
                self._cache[word] = term
        return term

    def words(self, text: str) -> list[str]:
        """The folded tokens of *text* that are not stop words, in order."""
        return [w for w in tokenize(text) if w not in STOP_WORDS]

    def terms(self, text: str) -> list[str]:
        """The terms of *text*, in order."""
        return [self.stem(w) for w in self.words(text)]
