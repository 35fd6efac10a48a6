"""Did-you-mean and completions over the dictionary of words (unstemmed, folded).

Did-you-mean replaces a word missing from the dictionary by the dictionary word
nearest by Levenshtein distance over code points, at most 1 for words of up to
four characters and 2 beyond; ties go to the word in more products, then to the
first in code point order.
"""

from __future__ import annotations

from .fileformat import Section
from .reader import IndexFile

__all__ = ["levenshtein", "max_distance", "nearest_word"]


def max_distance(word: str) -> int:
    """The largest edit distance a correction of *word* may have."""
    return 1 if len(word) <= 4 else 2


def levenshtein(a: str, b: str, bound: int) -> int:
    """The edit distance of *a* and *b*, or ``bound + 1`` if it exceeds *bound*."""
    if abs(len(a) - len(b)) > bound:
        return bound + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) > bound:
            return bound + 1
        previous = current
    return previous[-1] if previous[-1] <= bound else bound + 1


def nearest_word(index: IndexFile, word: str) -> str | None:
    """The correction of *word* (see the module docstring), or None."""
    bound = max_distance(word)
    df = index.views[Section.WORD_DF]
    best: tuple[int, int, int] | None = None
    for n in range(index.n_words):
        candidate = index.word_text(n)
        distance = levenshtein(word, candidate, bound)
        if distance <= bound and (best is None or (distance, -df[n], n) < best):
            best = (distance, -df[n], n)
    return None if best is None else index.word_text(best[2])
