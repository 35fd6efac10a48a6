"""From a :class:`~.model.Query` to a :class:`Plan` both query engines execute.

Text syntax: words are required (AND); ``a OR b`` accepts either side; ``-word``
excludes products with that word; ``"a quoted phrase"`` requires each of its words
(word positions are not stored, so order and adjacency are not checked). A word
that the tokenizer splits ("lego-duplo") requires each part. Stop words are
ignored. With ``prefix`` set, the last plain word is completed: it matches any
dictionary word it begins (the :data:`PREFIX_EXPANSION` most frequent).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from .. import tokenize
from .analysis import STOP_WORDS, Analyzer
from .errors import QueryError
from .fileformat import Section
from .model import Query
from .reader import IndexFile

__all__ = [
    "DEFAULT_RULES",
    "KEYS",
    "MAX_LIMIT",
    "MAX_TERMS",
    "MAX_TEXT",
    "Plan",
    "Planner",
    "Word",
    "parse_rules",
]

MAX_TEXT: Final = 1000
MAX_TERMS: Final = 32
MAX_LIMIT: Final = 1000
PREFIX_EXPANSION: Final = 64

#: Sort keys and their codes in :attr:`Plan.keys`; every order ends with the
#: document number (popularity, then product id).
KEYS: Final = {
    "relevance": 0,
    "price_asc": 1,
    "price_desc": 2,
    "popularity": 3,
    "newest": 4,
    "in_stock": 5,
}

#: Composed sort rules available unless the configuration names others.
DEFAULT_RULES: Final = {
    "instock_first": ("in_stock", "relevance"),
    "instock_price_asc": ("in_stock", "price_asc"),
}

#: How many parsed query texts a planner remembers.
PARSED_CACHE: Final = 4096

_ITEM: Final = re.compile(r'-?"[^"]*"?|\S+')


@dataclass(frozen=True, slots=True)
class Word:
    """A word of the query text as the shopper typed it, and whether it is known."""

    raw: str
    folded: str
    known: bool


@dataclass(frozen=True, slots=True)
class Plan:
    """What to execute: an AND of clauses, each an OR of ``(term, weight)``.

    ``empty`` says a required word is unknown, so nothing matches. Masks have one
    byte per category (brand) number, 1 for selected, or are empty for "any".
    Absent bounds are -1 (``price_max``: 2**31 - 1); ``age`` to ``age_to`` is the
    range a product's ages must overlap.
    """

    clauses: tuple[tuple[tuple[int, float], ...], ...]
    excluded: tuple[int, ...]
    empty: bool
    category_mask: bytes
    brand_mask: bytes
    price_min: int
    price_max: int
    age: int
    age_to: int
    in_stock: int
    keys: tuple[int, ...]
    offset: int
    limit: int
    facets: bool


#: A parsed text: clauses, excluded terms, whether nothing can match, the words.
Parsed = tuple[tuple[tuple[tuple[int, float], ...], ...], tuple[int, ...], bool, tuple[Word, ...]]


def parse_rules(rules: Mapping[str, str | tuple[str, ...]]) -> dict[str, tuple[int, ...]]:
    """Sort orders by name: the plain ones, then *rules* (``"in_stock,price_asc"``)."""
    orders: dict[str, tuple[int, ...]] = {
        name: (code,) for name, code in KEYS.items() if name != "in_stock"
    }
    for name, spec in rules.items():
        parts = spec.split(",") if isinstance(spec, str) else list(spec)
        codes: list[int] = []
        for part in parts:
            if part.strip() not in KEYS:
                raise QueryError(
                    f"sort rule {name!r}: unknown key {part.strip()!r} (one of {', '.join(KEYS)})"
                )
            codes.append(KEYS[part.strip()])
        if not codes:
            raise QueryError(f"sort rule {name!r} is empty")
        orders[name] = tuple(codes)
    return orders


def _check(query: Query, orders: Mapping[str, tuple[int, ...]]) -> None:
    if not isinstance(query.text, str) or len(query.text) > MAX_TEXT:
        raise QueryError(f"query text must be a string of at most {MAX_TEXT} characters")
    if query.sort not in orders:
        raise QueryError(f"unknown sort {query.sort!r}; one of {', '.join(sorted(orders))}")
    if not (isinstance(query.limit, int) and 0 <= query.limit <= MAX_LIMIT):
        raise QueryError(f"limit must be an integer from 0 to {MAX_LIMIT}")
    if not (isinstance(query.offset, int) and 0 <= query.offset <= 10**6):
        raise QueryError("offset must be an integer from 0 to 1000000")
    for name in ("price_min", "price_max", "age", "age_to", "category"):
        value = getattr(query, name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise QueryError(f"{name} must be an integer or absent")
    if query.age_to is not None and (query.age is None or query.age_to < query.age):
        raise QueryError("age_to goes with age, and is not below it")
    if not all(isinstance(b, int) and not isinstance(b, bool) for b in query.brands):
        raise QueryError("brands must be integers")


class Planner:
    """Plans queries against one index file."""

    def __init__(self, index: IndexFile, analyzer: Analyzer, orders: dict[str, tuple[int, ...]]):
        self.index = index
        self.analyzer = analyzer
        self.orders = orders
        self._df = index.views[Section.TERM_DF]
        self._word_df = index.views[Section.WORD_DF]
        self._word_term = index.views[Section.WORD_TERM]
        self._n = max(index.n_docs, 1)
        categories = index.meta["categories"]
        self._category_number = {int(c[0]): n for n, c in enumerate(categories)}
        self._parent = [int(c[1]) for c in categories]
        self._brand_number = {int(b[0]): n for n, b in enumerate(index.meta["brands"])}
        # category id -> its subtree mask; at most one entry per category, built on demand
        self._masks: dict[int, bytes] = {}
        self._parsed: dict[tuple[str, bool], Parsed] = {}
        self._term_numbers = {index.term_text(n): n for n in range(index.n_terms)}

    def weight(self, term: int) -> float:
        """BM25's idf of a term."""
        df = self._df[term]
        return math.log(1.0 + (self._n - df + 0.5) / (df + 0.5))

    def _expand(self, prefix: str) -> tuple[tuple[int, float], ...]:
        first, end = self.index.word_range(prefix)
        ranked = sorted(range(first, end), key=lambda w: -self._word_df[w])
        terms = sorted({self._word_term[w] for w in ranked[:PREFIX_EXPANSION]})
        return tuple((t, self.weight(t)) for t in terms)

    def _terms(self, raw: str, words: list[Word]) -> list[int]:
        found = []
        for folded in tokenize(raw):
            if folded in STOP_WORDS:
                continue
            term = self._term_numbers.get(self.analyzer.stem(folded), -1)
            words.append(Word(raw, folded, term >= 0))
            found.append(term)
        return found

    def _units(self, query: Query, words: list[Word]) -> tuple[list[list[int]], list[int]]:
        """Required units (each a list of alternative term numbers) and excluded terms."""
        items = _ITEM.findall(query.text)
        completing = query.prefix and not query.text[-1:].isspace()
        last_plain = len(items) - 1 if completing and items and _plain(items[-1]) else -1
        units: list[list[int]] = []
        excluded: list[int] = []
        join_next = False
        for n, item in enumerate(items):
            if item == "OR" and units and n + 1 < len(items):
                join_next = True
                continue
            if item.startswith("-") and len(item) > 1:
                excluded.extend(t for t in self._terms(item[1:].strip('"'), []) if t >= 0)
                join_next = False
                continue
            new = self._item_units(item.strip('"'), words, n == last_plain)
            if join_next and new:
                units[-1] = sorted({*units[-1], *(t for unit in new for t in unit)})
            else:
                units.extend(new)
            join_next = False
        return units, excluded

    def _item_units(self, raw: str, words: list[Word], complete: bool) -> list[list[int]]:
        if not complete:
            return [[t] for t in self._terms(raw, words)]
        folded = tokenize(raw)
        if not folded:
            return []
        units = [[t] for t in self._terms(" ".join(folded[:-1]), words)]
        expansion = [t for t, _ in self._expand(folded[-1])]
        units.append(expansion or [-1])
        return units

    def text(self, query: Query) -> Parsed:
        """The clauses, excluded terms, emptiness and words of the query's text.

        Parsed texts are remembered (up to :data:`PARSED_CACHE`, then forgotten all at
        once): shoppers repeat the same searches, and the index never changes.
        """
        key = (query.text, query.prefix)
        parsed = self._parsed.get(key)
        if parsed is None:
            parsed = self._parse(query)
            if len(self._parsed) >= PARSED_CACHE:
                self._parsed.clear()
            self._parsed[key] = parsed
        return parsed

    def _parse(self, query: Query) -> Parsed:
        words: list[Word] = []
        units, excluded = self._units(query, words)
        if len(units) + len(excluded) > MAX_TERMS:
            raise QueryError(f"too many words in the query (at most {MAX_TERMS})")
        clauses: list[tuple[tuple[int, float], ...]] = []
        empty = False
        for unit in units:
            known = tuple((t, self.weight(t)) for t in sorted(set(unit)) if t >= 0)
            if not known:
                empty = True
            elif known not in clauses:
                clauses.append(known)
        return tuple(clauses), tuple(sorted(set(excluded))), empty, tuple(words)

    def _category_mask(self, category: int | None) -> bytes:
        if category is None:
            return b""
        mask = self._masks.get(category)
        if mask is None:
            target = self._category_number.get(category, -1)
            selected = bytearray(len(self._parent) + 1)
            for n in range(len(self._parent)):
                node = n
                while node >= 0 and node != target:
                    node = self._parent[node]
                selected[n] = node == target and target >= 0
            mask = self._masks[category] = bytes(selected)
        return mask

    def _brand_mask(self, brands: tuple[int, ...]) -> bytes:
        if not brands:
            return b""
        mask = bytearray(len(self._brand_number) + 1)
        for brand in brands:
            number = self._brand_number.get(brand)
            if number is not None:
                mask[number] = 1
        return bytes(mask)

    def plan(self, query: Query) -> tuple[Plan, tuple[Word, ...]]:
        """Check *query* and plan it.

        :raises QueryError: on a bad field (see :class:`~.model.Query`).
        """
        _check(query, self.orders)
        clauses, excluded, empty, words = self.text(query)
        in_stock = -1 if query.in_stock is None else int(bool(query.in_stock))
        plan = Plan(
            clauses=clauses,
            excluded=excluded,
            empty=empty,
            category_mask=self._category_mask(query.category),
            brand_mask=self._brand_mask(tuple(query.brands)),
            price_min=-1 if query.price_min is None else max(query.price_min, -1),
            price_max=2**31 - 1 if query.price_max is None else min(query.price_max, 2**31 - 1),
            age=-1 if query.age is None else min(max(query.age, -1), 255),
            age_to=-1 if query.age is None else min(query.age_to or query.age, 255),
            in_stock=in_stock,
            keys=self.orders[query.sort],
            offset=query.offset,
            limit=query.limit,
            facets=bool(query.facets),
        )
        return plan, words


def _plain(item: str) -> bool:
    return item != "OR" and not item.startswith(("-", '"'))
