"""The index the daemon serves, and how it is swapped for a newer one.

Index files live in one directory as ``index-<version>.sidx`` (the builder
writes a hidden temporary file beside it and renames it, so a file with that
name is complete). The newest name wins.

Swapping without failing a query in flight
    Every query takes a *lease* on the current index (:meth:`Holder.lease`)
    and keeps using that index to the end, whatever happens meanwhile. A swap
    opens and verifies the new file first (its checksum, off the event loop),
    replays the retained price/stock updates onto it, then replaces the
    current reference in one assignment; the old index is closed when its last
    lease ends. A file that fails to open (corrupt, truncated, of another
    format) is refused with a log line, remembered so it is not retried until
    the next ``SIGHUP``, and the old index keeps serving.

Price and stock updates (the update channel)
    ``update`` requests apply changes to the current index's column overlay
    (``Index.update``), so they show in the next query. Each change is also
    retained (the newest per product, for ``update_retention``) and replayed
    onto every index swapped in later: an index built from the database a
    moment before a change arrived does not undo it. The database stays the
    truth: a rebuild after the retention window reflects it alone.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ...core_ext.search.model import IndexInfo, Query, Result
from .errors import Busy

log = logging.getLogger("sleigh.search.index")

__all__ = ["Change", "Holder", "SearchIndex", "index_files", "index_name"]

Change = tuple[int, int | None, bool | None]
_NAME = re.compile(r"index-(\d{1,20})\.sidx")


class SearchIndex(Protocol):
    """What the daemon needs of an index (``sleigh.core_ext.search.Index``)."""

    @property
    def info(self) -> IndexInfo: ...

    def search(self, query: Query) -> Result: ...

    def suggest(self, text: str, limit: int = 8) -> list[str]: ...

    def update(
        self, product_id: int, price_cents: int | None = None, in_stock: bool | None = None
    ) -> bool: ...

    def close(self) -> None: ...


Opener = Callable[[Path], SearchIndex]


def index_name(version: int) -> str:
    """The file name of the index with *version*."""
    return f"index-{version:020d}.sidx"


def index_files(directory: Path) -> list[Path]:
    """The index files in *directory*, the newest (highest version) first."""
    try:
        names = [p for p in directory.iterdir() if _NAME.fullmatch(p.name)]
    except FileNotFoundError:
        return []
    return sorted(names, key=lambda p: int(_NAME.fullmatch(p.name)[1]), reverse=True)  # type: ignore[index]


@dataclass
class _Slot:
    index: SearchIndex
    path: Path
    identity: tuple[int, int, int]
    opened: float
    leases: int = 0
    retired: bool = False


def _identity(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


class Holder:
    """The current index, leases on it, swaps, and the retained updates.

    :param directory: where the index files are.
    :param opener: opens and verifies one file (raises on a bad one).
    :param retention: seconds an update is kept for replay.
    """

    def __init__(self, directory: Path, opener: Opener, retention: float = 3600.0) -> None:
        self.directory = directory
        self._open = opener
        self._retention = retention
        self._lock = threading.Lock()
        self._swap_lock = threading.Lock()
        self._current: _Slot | None = None
        self._refused: set[tuple[str, tuple[int, int, int]]] = set()
        self._updates: dict[int, tuple[int | None, bool | None, float]] = {}
        self.swaps = 0
        self.refusals = 0
        self.updates_applied = 0
        self.updates_replayed = 0

    @property
    def info(self) -> IndexInfo | None:
        slot = self._current
        return None if slot is None else slot.index.info

    @property
    def opened_at(self) -> float | None:
        slot = self._current
        return None if slot is None else slot.opened

    @contextmanager
    def lease(self) -> Iterator[SearchIndex]:
        """The current index, kept open until the block ends.

        :raises Busy: when there is no index yet.
        """
        with self._lock:
            slot = self._current
            if slot is None:
                raise Busy("no search index yet: run `sleigh search reindex`")
            slot.leases += 1
        try:
            yield slot.index
        finally:
            with self._lock:
                slot.leases -= 1
                done = slot.retired and slot.leases == 0
            if done:
                self._close(slot)

    def refresh(self, *, retry_refused: bool = False) -> bool:
        """Swap to the newest index file if it is not the one served.

        :param retry_refused: try a file refused before again (``SIGHUP``).
        :returns: whether a new index is now served.
        """
        with self._swap_lock:
            if retry_refused:
                self._refused.clear()
            for path in index_files(self.directory)[:1]:
                return self._consider(path)
            return False

    def _consider(self, path: Path) -> bool:
        try:
            identity = _identity(path)
        except FileNotFoundError:
            return False
        current = self._current
        key = (path.name, identity)
        if (current is not None and (current.path, current.identity) == (path, identity)) or (
            key in self._refused
        ):
            return False
        try:
            index = self._open(path)
        except Exception as exc:  # any failure to open means: refuse it, keep serving
            self._refused.add(key)
            self.refusals += 1
            log.error("refused index file %s (the served index stays): %s", path, exc)
            return False
        self._replay(index)
        self._install(_Slot(index, path, identity, time.time()))
        return True

    def _install(self, slot: _Slot) -> None:
        with self._lock:
            old, self._current = self._current, slot
            done = old is not None and old.leases == 0
            if old is not None:
                old.retired = True
        self.swaps += 1
        info = slot.index.info
        log.info(
            "serving index %s (version %d, %d products, %d terms)",
            slot.path.name,
            info.version,
            info.products,
            info.terms,
        )
        if old is not None and done:
            self._close(old)

    def _close(self, slot: _Slot) -> None:
        try:
            slot.index.close()
        except Exception as exc:  # closing a retired index must never stop the daemon
            log.warning("closing the retired index %s failed: %r", slot.path, exc)

    def update(self, changes: list[Change]) -> tuple[int, int | None]:
        """Apply *changes* to the served index and retain them for replay.

        :returns: how many products the index changed, and its version.
        """
        now = time.time()
        with self._swap_lock:
            for pid, price, stock in changes:
                old = self._updates.get(pid)
                if old is not None:
                    price = old[0] if price is None else price
                    stock = old[1] if stock is None else stock
                self._updates[pid] = (price, stock, now)
            self._prune(now)
            with self.lease() as index:
                applied = _apply(index, changes)
                self.updates_applied += applied
                return applied, index.info.version

    def _prune(self, now: float) -> None:
        horizon = now - self._retention
        stale = [pid for pid, (_p, _s, at) in self._updates.items() if at < horizon]
        for pid in stale:
            del self._updates[pid]

    def _replay(self, index: SearchIndex) -> None:
        self._prune(time.time())
        if self._updates:
            changes = [(pid, p, s) for pid, (p, s, _at) in self._updates.items()]
            applied = _apply(index, changes)
            self.updates_replayed += applied
            log.info("replayed %d retained price/stock updates onto the new index", applied)

    def close(self) -> None:
        """Close the served index (the daemon is stopping; no lease is held)."""
        with self._lock:
            slot, self._current = self._current, None
        if slot is not None:
            self._close(slot)


def _apply(index: SearchIndex, changes: list[Change]) -> int:
    """Apply *changes* to *index*; how many products it holds were changed."""
    return sum(index.update(pid, price, stock) for pid, price, stock in changes)
