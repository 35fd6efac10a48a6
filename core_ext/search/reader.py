"""An index file opened: the memory map, its sections as typed views, its dictionaries."""

from __future__ import annotations

import json
import mmap
import os
import struct
from pathlib import Path
from typing import Any

from .errors import IndexCorrupt, IndexMissing
from .fileformat import Header, Section, read_header

__all__ = ["IndexFile"]

_CODES = {
    Section.PRODUCT_ID: "q",
    Section.PRICE: "i",
    Section.BRAND: "i",
    Section.CATEGORY: "i",
    Section.AGE_MIN: "B",
    Section.AGE_MAX: "B",
    Section.IN_STOCK: "B",
    Section.POPULARITY: "q",
    Section.CREATED: "q",
    Section.NORM: "f",
    Section.ID_ORDER: "I",
    Section.TERM_OFFSETS: "I",
    Section.TERM_DF: "I",
    Section.TERM_POSTINGS: "q",
    Section.TERM_BITMAP: "q",
    Section.BITMAPS: "Q",
    Section.WORD_OFFSETS: "I",
    Section.WORD_DF: "I",
    Section.WORD_TERM: "I",
}


def _map(path: Path) -> mmap.mmap:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise IndexMissing(
            f"no search index at {path}; build one (sleigh search reindex)"
        ) from None
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            raise IndexCorrupt(f"index file {path} is empty; rebuild the index")
        return mmap.mmap(fd, size, access=mmap.ACCESS_READ)
    finally:
        os.close(fd)


class IndexFile:
    """The sections of one verified index file, mapped read-only.

    :raises IndexMissing: if there is no file at *path*.
    :raises IndexCorrupt: if the file fails any check (see :func:`.fileformat.read_header`).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.map = _map(self.path)
        self.size = len(self.map)
        self.raw = memoryview(self.map)
        self.header: Header = read_header(self.raw)
        self.views: dict[Section, memoryview] = {}
        for section in Section:
            start, length = self.header.spans[section]
            view = self.raw[start : start + length]
            code = _CODES.get(section)
            if code is not None:
                if length % struct.calcsize(code) or start % 8:
                    raise IndexCorrupt(f"index section {section.name} has a partial item")
                view = view.cast(code)  # type: ignore[call-overload]
            self.views[section] = view
        self._check_sizes()
        try:
            self.meta: dict[str, Any] = json.loads(bytes(self.views[Section.META]))
        except ValueError as exc:
            raise IndexCorrupt(f"index metadata unreadable ({exc}); rebuild the index") from None
        self.n_docs = self.header.products
        self.n_terms = self.header.terms
        self.n_words = len(self.views[Section.WORD_DF])

    def _check_sizes(self) -> None:
        n, t, v = self.header.products, self.header.terms, self.views
        per_doc = (
            *(Section.PRODUCT_ID, Section.PRICE, Section.BRAND, Section.CATEGORY),
            *(Section.AGE_MIN, Section.AGE_MAX, Section.IN_STOCK, Section.POPULARITY),
            *(Section.CREATED, Section.NORM, Section.ID_ORDER),
        )
        sizes_ok = all(len(v[s]) == n for s in per_doc)
        sizes_ok &= len(v[Section.TERM_OFFSETS]) == t + 1 and len(v[Section.TERM_DF]) == t
        sizes_ok &= len(v[Section.TERM_POSTINGS]) == t + 1 and len(v[Section.TERM_BITMAP]) == t
        w = len(v[Section.WORD_DF])
        sizes_ok &= len(v[Section.WORD_OFFSETS]) == w + 1 and len(v[Section.WORD_TERM]) == w
        if not sizes_ok:
            raise IndexCorrupt("index sections disagree on their sizes; rebuild the index")

    def close(self) -> None:
        """Release the views and the map (the caller ensures no query still runs)."""
        for view in self.views.values():
            view.release()
        self.raw.release()
        self.map.close()

    # -- dictionaries ------------------------------------------------------------

    def _text(self, offsets: Section, text: Section, i: int) -> bytes:
        o = self.views[offsets]
        return bytes(self.views[text][o[i] : o[i + 1]])

    def term_text(self, i: int) -> str:
        return self._text(Section.TERM_OFFSETS, Section.TERM_TEXT, i).decode("utf-8", "replace")

    def word_text(self, i: int) -> str:
        return self._text(Section.WORD_OFFSETS, Section.WORD_TEXT, i).decode("utf-8", "replace")

    def _lower_bound(self, offsets: Section, text: Section, count: int, key: bytes) -> int:
        lo, hi = 0, count
        while lo < hi:
            mid = (lo + hi) // 2
            if self._text(offsets, text, mid) < key:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def term_number(self, term: str) -> int:
        """The number of *term*, or -1 if it is not in the dictionary."""
        key = term.encode("utf-8", "surrogatepass")
        i = self._lower_bound(Section.TERM_OFFSETS, Section.TERM_TEXT, self.n_terms, key)
        if i < self.n_terms and self._text(Section.TERM_OFFSETS, Section.TERM_TEXT, i) == key:
            return i
        return -1

    def word_range(self, prefix: str) -> tuple[int, int]:
        """The numbers ``[first, end)`` of the words starting with *prefix*."""
        key = prefix.encode("utf-8", "surrogatepass")
        first = self._lower_bound(Section.WORD_OFFSETS, Section.WORD_TEXT, self.n_words, key)
        end = self._lower_bound(
            Section.WORD_OFFSETS, Section.WORD_TEXT, self.n_words, key + b"\xff"
        )
        return first, end
