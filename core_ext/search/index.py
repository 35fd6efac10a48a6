"""An opened index: queries, completions, and the price and stock overlay.

Prices and stock come from an *overlay*: private copies of those two columns,
taken when the file is opened, which :meth:`Index.update` changes in place
without a rebuild. A query running meanwhile sees each product's old or new
value (single aligned stores), never a torn one. The next build carries the
database's values; the daemon replays recent updates over a new file itself.
"""

from __future__ import annotations

import bisect
import logging
import re
import threading
import time
from array import array
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from .analysis import Analyzer
from .errors import IndexClosed, QueryError
from .fileformat import Section
from .model import IndexInfo, Query, Result
from .plan import DEFAULT_RULES, Plan, Planner, Word, parse_rules
from .reader import IndexFile
from .twin import FacetCounts, PyEngine

__all__ = ["Engine", "Index", "open_index"]

_log = logging.getLogger("sleigh.search.index")


class Engine(Protocol):
    def run(self, plan: Plan) -> tuple[list[int], int, FacetCounts | None]: ...
    def nearest_word(self, word: str) -> str | None: ...
    def update(self, doc: int, price: int, stock: int) -> None: ...
    def close(self) -> None: ...


class Index:
    """A read-only index file and its overlay; every method is safe from many threads."""

    def __init__(
        self,
        file: IndexFile,
        *,
        sort_rules: Mapping[str, str | tuple[str, ...]] | None = None,
        native: bool = False,
    ) -> None:
        self.file = file
        self.native = native
        self._planner = Planner(
            file, Analyzer(), parse_rules(DEFAULT_RULES if sort_rules is None else sort_rules)
        )
        self._price = array("i", file.views[Section.PRICE])
        self._stock = bytearray(file.views[Section.IN_STOCK])
        self._ids = file.views[Section.PRODUCT_ID]
        self._by_id = file.views[Section.ID_ORDER]
        self._lock = threading.Lock()
        self._use = threading.Lock()
        self._active = 0
        self._closed = False
        self.engine: Engine = self._engine(native)
        header = file.header
        self.info = IndexInfo(
            header.version,
            header.built_at,
            header.products,
            header.terms,
            file.size,
            str(file.path),
        )

    def _engine(self, native: bool) -> Engine:
        if native:
            from ._engine import Engine as NativeEngine

            return NativeEngine(self.file, self._price, self._stock)
        return PyEngine(self.file, self._price, self._stock)

    def close(self) -> None:
        """Unmap the file once no query runs on it any more (now, or when the last ends).

        Later searches raise :class:`~.errors.IndexClosed`.
        """
        with self._use:
            if self._closed:
                return
            self._closed = True
            idle = self._active == 0
        if idle:
            self._release()

    def _release(self) -> None:
        self.engine.close()
        self.file.close()

    def _enter(self) -> None:
        with self._use:
            if self._closed:
                raise IndexClosed("this index was closed; search the one that replaced it")
            self._active += 1

    def _leave(self) -> None:
        with self._use:
            self._active -= 1
            last = self._closed and self._active == 0
        if last:
            self._release()

    @property
    def sorts(self) -> list[str]:
        """The sort names this index accepts."""
        return sorted(self._planner.orders)

    def search(self, query: Query) -> Result:
        """Run *query*.

        :raises QueryError: if the query is malformed (see :class:`~.model.Query`).
        """
        started = time.perf_counter_ns()
        self._enter()
        try:
            plan, words = self._planner.plan(query)
            docs, total, facets = self.engine.run(plan)
            ids = [self._ids[doc] for doc in docs]
            suggestion = self._did_you_mean(query.text, words)
        finally:
            self._leave()
        took = (time.perf_counter_ns() - started) // 1000
        return Result(ids, total, facets, suggestion, took)

    def _did_you_mean(self, text: str, words: tuple[Word, ...]) -> str | None:
        changed = False
        for word in words:
            if word.known:
                continue
            better = self.engine.nearest_word(word.folded)
            if better is not None:
                # the word as typed if it shows (any case), else the whole item it was in
                pattern = re.compile(re.escape(word.folded), re.IGNORECASE)
                text, found = pattern.subn(better, text, count=1)
                if not found:
                    text = text.replace(word.raw, better, 1)
                changed = True
        return text if changed else None

    def suggest(self, prefix: str, limit: int = 10) -> list[str]:
        """Completions of the last word of *prefix*, most frequent first.

        :returns: *prefix* with its last word completed, up to *limit* of them.
        """
        if not isinstance(prefix, str) or not 0 <= limit <= 100:
            raise QueryError("suggest needs a text and a limit from 0 to 100")
        from .. import tokenize

        tokens = tokenize(prefix[-200:])
        if not tokens or not prefix[-1:].isalnum():
            return []
        first, end = self.file.word_range(tokens[-1])
        df = self.file.views[Section.WORD_DF]
        ranked = sorted(range(first, end), key=lambda w: (-df[w], w))[:limit]
        head = prefix[: len(prefix) - len(prefix.split()[-1])] if prefix.split() else ""
        return [head + self.file.word_text(w) for w in ranked]

    def update(
        self, product_id: int, price_cents: int | None = None, in_stock: bool | None = None
    ) -> bool:
        """Change a product's price and/or stock in the overlay.

        :returns: False if the product is not in this index.
        """
        if price_cents is not None and not 0 <= price_cents < 2**31:
            raise QueryError("price_cents must be from 0 to 2**31 - 1")
        doc = self._doc(product_id)
        if doc < 0:
            return False
        with self._lock:
            if price_cents is not None:
                self._price[doc] = price_cents
            if in_stock is not None:
                self._stock[doc] = 1 if in_stock else 0
            self.engine.update(
                doc,
                -1 if price_cents is None else price_cents,
                -1 if in_stock is None else int(in_stock),
            )
        return True

    def _doc(self, product_id: int) -> int:
        ids, order = self._ids, self._by_id
        n = bisect.bisect_left(range(len(order)), product_id, key=lambda i: ids[order[i]])
        if n < len(order) and ids[order[n]] == product_id:
            return int(order[n])
        return -1


def open_index(
    path: Path,
    *,
    sort_rules: Mapping[str, str | tuple[str, ...]] | None = None,
    native: bool | None = None,
) -> Index:
    """Open and verify the index file at *path*.

    :param sort_rules: composed sort orders by name (default :data:`~.plan.DEFAULT_RULES`).
    :param native: force the compiled (True) or Python (False) engine; by default the
        compiled one unless ``SLEIGH_NO_EXTENSIONS`` is set or it cannot be imported.
    :raises IndexMissing: if there is no file.
    :raises IndexCorrupt: if the file is damaged or of another format.
    """
    from . import NATIVE

    return Index(
        IndexFile(Path(path)), sort_rules=sort_rules, native=NATIVE if native is None else native
    )
