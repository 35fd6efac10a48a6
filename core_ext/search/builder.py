"""Building an index file from products (see :mod:`.fileformat` for the layout).

The file is written beside its final name, flushed to disk, renamed over the final
name and the directory flushed: readers see the old file or the new, never a part.
"""

from __future__ import annotations

import json
import logging
import os
import time
from array import array
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from .. import tokenize
from .analysis import FIELD_WEIGHTS, MAX_TF, STOP_WORDS, Analyzer
from .fileformat import Header, Section, write_sections
from .model import IndexInfo, ProductDoc
from .postings import encode_index

if TYPE_CHECKING:
    from ._build import TermCounter

__all__ = ["BM25_B", "BM25_K1", "build_index"]

_log = logging.getLogger("sleigh.search.index")

BM25_K1: Final = 1.2
BM25_B: Final = 0.75

_W_TITLE: Final = FIELD_WEIGHTS["title"]
_W_BRAND: Final = FIELD_WEIGHTS["brand"]
_W_CATEGORY: Final = FIELD_WEIGHTS["category"]
_W_DESCRIPTION: Final = FIELD_WEIGHTS["description"]


class PyTermCounter:
    """Documents' words counted into flat arrays (the compiled ``TermCounter``'s twin).

    Words are numbered as first seen; *assign* gives a new word's provisional term
    number, or -1 for a stop word.
    """

    def __init__(self, assign: Callable[[str], int], weights: tuple[int, ...]) -> None:
        self.words: dict[str, int] = {}
        self.assign = assign
        self.weights = weights
        self.word_term = array("i")
        self.word_df = array("I")
        self.ids = array("I")
        self.tfs = array("B")
        self.starts = array("Q", [0])
        self.lengths = array("I")

    def _number(self, word: str) -> int:
        n = self.words.get(word)
        if n is None:
            n = self.words[word] = len(self.word_term)
            self.word_term.append(self.assign(word))
            self.word_df.append(0)
        return n

    def add(self, *fields: list[str]) -> None:
        counts: dict[int, int] = {}
        seen: set[int] = set()
        length = 0
        for tokens, weight in zip(fields, self.weights, strict=True):
            for word in tokens:
                n = self._number(word)
                term = self.word_term[n]
                if term < 0:
                    continue
                seen.add(n)
                counts[term] = counts.get(term, 0) + weight
                length += weight
        for n in seen:
            self.word_df[n] += 1
        self.ids.extend(counts)
        self.tfs.extend(min(tf, MAX_TF) for tf in counts.values())
        self.starts.append(len(self.ids))
        self.lengths.append(length)

    def result(
        self,
    ) -> tuple[list[str], array[int], array[int], array[int], array[int], array[int], array[int]]:
        return (
            list(self.words),
            self.word_term,
            self.word_df,
            self.ids,
            self.tfs,
            self.starts,
            self.lengths,
        )


def _count(
    docs: list[ProductDoc],
) -> tuple[
    dict[str, int],
    tuple[list[str], array[int], array[int], array[int], array[int], array[int], array[int]],
]:
    """Every document's terms: the provisional term numbers, and the counter's result."""
    from . import NATIVE

    analyzer = Analyzer()
    terms: dict[str, int] = {}

    def assign(word: str) -> int:
        if word in STOP_WORDS:
            return -1
        return terms.setdefault(analyzer.stem(word), len(terms))

    weights = (_W_TITLE, _W_BRAND, _W_CATEGORY, _W_DESCRIPTION)
    counter: PyTermCounter | TermCounter
    if NATIVE:
        from ._build import TermCounter as counter_class

        counter = counter_class(assign, weights)
    else:
        counter = PyTermCounter(assign, weights)
    for doc in docs:
        counter.add(
            tokenize(doc.title),
            tokenize(doc.brand),
            tokenize(" ".join(name for _, name in doc.category_path)),
            tokenize(doc.description),
        )
    return terms, counter.result()


def _text_table(strings: list[str]) -> tuple[bytes, bytes]:
    offsets = array("I", [0])
    text = bytearray()
    for s in strings:
        text += s.encode("utf-8", "surrogatepass")
        offsets.append(len(text))
    return offsets.tobytes(), bytes(text)


def _catalog(docs: list[ProductDoc]) -> tuple[list[list[object]], dict[int, int], dict[int, int]]:
    """Categories as ``[id, parent number, name]`` and the numbers of categories, brands."""
    parents: dict[int, tuple[int, str]] = {}
    for doc in docs:
        parent = -1
        for category_id, name in doc.category_path:
            parents.setdefault(category_id, (parent, name))
            parent = category_id
    order = sorted(parents)
    number = {category_id: n for n, category_id in enumerate(order)}
    table: list[list[object]] = [
        [cid, number.get(parents[cid][0], -1), parents[cid][1]] for cid in order
    ]
    brands = {b: n for n, b in enumerate(sorted({doc.brand_id for doc in docs}))}
    return table, number, brands


def _columns(
    docs: list[ProductDoc], categories: dict[int, int], brands: dict[int, int]
) -> dict[Section, bytes]:
    def column(code: str, values: Iterable[int]) -> bytes:
        return array(code, values).tobytes()

    by_id = sorted(range(len(docs)), key=lambda n: docs[n].id)
    return {
        Section.PRODUCT_ID: column("q", (d.id for d in docs)),
        Section.PRICE: column("i", (d.price_cents for d in docs)),
        Section.BRAND: column("i", (brands[d.brand_id] for d in docs)),
        Section.CATEGORY: column(
            "i", (categories[d.category_path[-1][0]] if d.category_path else -1 for d in docs)
        ),
        Section.AGE_MIN: column("B", (min(max(d.age_min, 0), 255) for d in docs)),
        Section.AGE_MAX: column("B", (min(max(d.age_max, 0), 255) for d in docs)),
        Section.IN_STOCK: column("B", (1 if d.in_stock else 0 for d in docs)),
        Section.POPULARITY: column("q", (d.popularity for d in docs)),
        Section.CREATED: column("q", (d.created for d in docs)),
        Section.ID_ORDER: column("I", by_id),
    }


def _norms(lengths: array[int]) -> tuple[bytes, float]:
    average = (sum(lengths) / len(lengths)) if lengths else 1.0
    average = average or 1.0
    k1, b = BM25_K1, BM25_B
    return array("f", (k1 * (1 - b + b * n / average) for n in lengths)).tobytes(), average


def _sections(docs: list[ProductDoc]) -> tuple[list[bytes], int]:
    terms, (words, word_term, word_df, ids, tfs, starts, lengths) = _count(docs)
    ordered = sorted(terms)
    final = array("I", bytes(4 * len(ordered)))
    for n, term in enumerate(ordered):
        final[terms[term]] = n
    postings, term_postings, term_df, term_bitmap, bitmaps = encode_index(
        ids, tfs, starts, final, len(ordered)
    )
    kept = sorted((w, n) for w, n in zip(words, range(len(words)), strict=True) if word_df[n])
    category_table, category_numbers, brand_numbers = _catalog(docs)
    norms, average = _norms(lengths)
    meta = {
        "categories": category_table,
        "brands": _brand_names(docs, brand_numbers),
        "k1": BM25_K1,
        "b": BM25_B,
        "average_length": average,
    }
    sections: dict[Section, bytes] = _columns(docs, category_numbers, brand_numbers)
    sections[Section.META] = json.dumps(meta, ensure_ascii=False).encode()
    sections[Section.NORM] = norms
    sections[Section.TERM_OFFSETS], sections[Section.TERM_TEXT] = _text_table(ordered)
    sections[Section.TERM_DF] = term_df
    sections[Section.TERM_POSTINGS] = term_postings
    sections[Section.TERM_BITMAP] = term_bitmap
    sections[Section.POSTINGS] = postings
    sections[Section.BITMAPS] = bitmaps
    sections[Section.WORD_OFFSETS], sections[Section.WORD_TEXT] = _text_table([w for w, _ in kept])
    sections[Section.WORD_DF] = array("I", (word_df[n] for _, n in kept)).tobytes()
    sections[Section.WORD_TERM] = array("I", (final[word_term[n]] for _, n in kept)).tobytes()
    return [sections[s] for s in Section], len(ordered)


def _brand_names(docs: list[ProductDoc], numbers: dict[int, int]) -> list[list[object]]:
    names: dict[int, str] = {}
    for doc in docs:
        names.setdefault(doc.brand_id, doc.brand)
    return [[b, names[b]] for b in numbers]


def _write_atomically(path: Path, data: bytearray) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def build_index(
    products: Iterable[ProductDoc], path: Path, *, version: int | None = None
) -> IndexInfo:
    """Build an index of *products* into the file *path*, atomically.

    :param version: the index version; by default the build time in milliseconds.
    :returns: what the new file holds.
    """
    started = time.time()
    docs = sorted(products, key=lambda d: (-d.popularity, d.id))
    if len({d.id for d in docs}) != len(docs):
        raise ValueError("product ids must be unique")
    if any(not 0 <= d.price_cents < 2**31 for d in docs):
        raise ValueError("prices must be from 0 to 2**31 - 1 cents")
    sections, n_terms = _sections(docs)
    header = Header(
        version if version is not None else int(started * 1000), started, len(docs), n_terms, []
    )
    data = bytearray()
    write_sections(data, header, sections)
    path = Path(path)
    _write_atomically(path, data)
    _log.info(
        "built index %s: %d products, %d terms, %d bytes in %.1f s",
        path,
        len(docs),
        n_terms,
        len(data),
        time.time() - started,
    )
    return IndexInfo(header.version, started, len(docs), n_terms, len(data), str(path))
