"""The search tokenizer in pure Python: the twin of the compiled ``_tokenizer``.

Both implementations follow one contract, checked by the same tests
(``tests/core_ext/test_tokenizer.py``); this one is written to be obviously
right, the compiled one to be fast.

Folding
    :func:`fold` computes the Unicode compatibility caseless form
    (``NFKD(casefold(NFKD(casefold(NFD(s)))))``, definition D146 of the Unicode
    standard, which unlike ``NFKD(casefold(s))`` is idempotent) and then drops
    every combining mark, meaning every code point whose canonical combining
    class is not 0 (``unicodedata.combining(ch) != 0``): accents, cedillas,
    dakuten, viramas. Nothing else changes: "Crème Brûlée" -> "creme brulee",
    "ﬁ" -> "fi", "Straße" -> "strasse", "①" -> "1".

Word characters (applied to the folded text)
    * a *word character* has a general category of letter (``L*``) or number
      (``Nd``, ``Nl``, ``No``); a token starts with one;
    * a *mark* (``Mn``, ``Mc``, ``Me``; only marks of combining class 0 survive
      folding, such as Devanagari vowel signs) continues a token but never starts
      one, so a stray variation selector after an emoji is not a token;
    * an *apostrophe* (U+0027 APOSTROPHE or U+2019 RIGHT SINGLE QUOTATION
      MARK) that follows a token character and precedes a word character is
      removed ("don't" -> "dont", "Barbie's" -> "barbies"); anywhere else it
      separates;
    * everything else separates: spaces, punctuation (including ``_``, ``-``
      and ``.``), symbols (emoji), controls, unassigned code points and lone
      surrogates, which therefore never crash and never reach a token.

Word characters of different scripts with no separator between them make one
token ("東京Tokyo" -> "東京tokyo"); there is no word segmentation of scripts
written without spaces. Tokens longer than :data:`MAX_TOKEN` code points (counted
after apostrophes are removed) are cut to their first :data:`MAX_TOKEN`; the
empty token never appears.
"""

from __future__ import annotations

import unicodedata
from typing import Final

__all__ = ["MAX_TOKEN", "fold", "tokenize", "tokenize_positions"]

#: Longest token kept, in code points; longer tokens are truncated to this.
MAX_TOKEN: Final = 64

_APOSTROPHES: Final = frozenset("'\u2019")
_SEP: Final = 0
_WORD: Final = 1
_MARK: Final = 2
_APOS: Final = 3


def _require_str(text: object) -> str:
    if not isinstance(text, str):
        raise TypeError(f"expected str, got {type(text).__name__}")
    return text


def fold(text: str) -> str:
    """Fold case, compatibility forms and accents, as search compares words.

    :param text: any text; lone surrogates pass through unchanged.
    :returns: the folded text.
    :raises TypeError: if *text* is not a ``str``.
    """
    s = _require_str(text)
    s = unicodedata.normalize("NFD", s).casefold()
    s = unicodedata.normalize("NFKD", s).casefold()
    s = unicodedata.normalize("NFKD", s)
    return "".join(ch for ch in s if not unicodedata.combining(ch))


def _char_class(ch: str) -> int:
    if ch in _APOSTROPHES:
        return _APOS
    major = unicodedata.category(ch)[0]
    if major in ("L", "N"):
        return _WORD
    return _MARK if major == "M" else _SEP


def _scan(folded: str) -> list[str]:
    """Split already folded text into tokens (see the module docstring)."""
    classes = [_char_class(ch) for ch in folded]
    classes.append(_SEP)
    tokens: list[str] = []
    current: list[str] = []
    for i, ch in enumerate(folded):
        cls = classes[i]
        if cls == _WORD or (cls == _MARK and current):
            current.append(ch)
        elif cls == _APOS and current and classes[i + 1] == _WORD:
            continue
        elif current:
            tokens.append("".join(current[:MAX_TOKEN]))
            current = []
    if current:
        tokens.append("".join(current[:MAX_TOKEN]))
    return tokens


def tokenize(text: str) -> list[str]:
    """Fold *text* and split it into search tokens.

    :param text: any text.
    :returns: the tokens in order, each 1 to :data:`MAX_TOKEN` code points.
    :raises TypeError: if *text* is not a ``str``.
    """
    return _scan(fold(text))


def tokenize_positions(text: str) -> list[tuple[str, int]]:
    """Tokenize *text* and number the tokens 0, 1, 2, … for phrase queries.

    :param text: any text.
    :returns: ``(token, position)`` pairs in order.
    :raises TypeError: if *text* is not a ``str``.
    """
    return [(token, position) for position, token in enumerate(tokenize(text))]
