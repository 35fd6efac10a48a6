"""The LMDB environment behind ``sleigh-cached``: layout, TTLs, sweeping, eviction.

Layout (one environment directory, ``subdir=True``)::

    data    key            -> expiry (8 bytes, little-endian ms since the epoch; 0 = never)
                              + payload
    expiry  expiry (8 bytes, big-endian; never = 2**64-1) + key -> b""
    meta    b"format"      -> b"1"

``data`` is what direct readers read: the expiry header travels with the
value, so a reader never returns an expired entry. ``expiry`` orders every
key by when it expires, so sweeping and eviction (soonest-to-expire first)
walk it from the front in small transactions.

LMDB flags: ``readahead=False`` (reads are random), ``lock=True`` (readers
in other processes use the reader table), ``writemap`` only with
``sync=none`` (commits become stores into the shared file mapping, with no
``pwrite`` per page: measured 1.45x the SET rate; the pages are the OS's
as soon as they are written, so a process crash loses nothing; the risk
writemap adds, a stray write through the map, needs C code touching the
map, and only LMDB's does). ``cache.sync`` chooses what an
acknowledged write survives: ``full`` (fsync each commit) an OS crash;
``data`` (``MDB_NOMETASYNC``) an OS crash, possibly losing the last
commit but never the file; ``none`` (``MDB_NOSYNC``) a process crash only:
after an OS crash (a new boot id, and no clean shutdown recorded) the file
is moved aside and the cache starts cold. Every mode survives ``kill -9``:
a commit that returned is in the file.
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lmdb

from .envfile import FORMAT, boot_id, check_crash, check_format, move_aside, open_env
from .errors import StoreError, StoreFull
from .ops import (
    HEADER,
    INDEX,
    Op,
    Set,
    apply_op,
    expiry_of,
    now_ms,
)
from .stamps import FILENAME as STAMPS
from .stamps import Stamps

log = logging.getLogger("sleigh.cache.store")


@dataclass(frozen=True)
class Usage:
    map_size: int
    used_bytes: int
    entries: int
    page_size: int

    @property
    def fraction(self) -> float:
        return self.used_bytes / self.map_size


class ReadView:
    """One read transaction: every read in it sees the same snapshot.

    Values are zero-copy ``memoryview``\\ s into the map, valid until the
    view is closed.
    """

    __slots__ = ("_data", "_txn", "now")

    def __init__(self, txn: lmdb.Transaction, data: Any, now: int) -> None:
        self._txn = txn
        self._data = data
        self.now = now

    def get(self, key: bytes) -> bytes | memoryview | None:
        raw = self._txn.get(key, db=self._data)
        if raw is None:
            return None
        expires = int.from_bytes(raw[:8], "little")
        if expires and expires <= self.now:
            return None
        return raw[8:]

    def pttl(self, key: bytes) -> int:
        """Milliseconds left; -1 if it never expires; -2 if absent or expired."""
        raw = self._txn.get(key, db=self._data)
        if raw is None:
            return -2
        expires = expiry_of(raw)
        if not expires:
            return -1
        return expires - self.now if expires > self.now else -2

    def close(self) -> None:
        self._txn.abort()


class Store:
    """The daemon's side of the cache: the only writer of the environment."""

    def __init__(
        self,
        env: lmdb.Environment,
        *,
        clock_ms: Callable[[], int] = now_ms,
        high_water: float = 0.9,
        low_water: float = 0.75,
    ) -> None:
        self.env = env
        self.clock_ms = clock_ms
        self.high_water = high_water
        self.low_water = low_water
        self.data = env.open_db(b"data")
        self.expiry = env.open_db(b"expiry")
        self.meta = env.open_db(b"meta")
        self.evictions = 0
        self.expirations = 0
        self._unchecked = 0
        self._check_every = max(4096, int(env.info()["map_size"]) // 100)
        with env.begin(write=True) as txn:
            if txn.get(b"format", db=self.meta) is None:
                txn.put(b"format", FORMAT, db=self.meta)
        #: the write stamps direct readers check what they kept against (:mod:`.stamps`)
        self.stamps = Stamps(Path(env.path()) / STAMPS)

    # -- opening -------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        map_size: int,
        sync: str = "data",
        max_readers: int = 512,
        clock_ms: Callable[[], int] = now_ms,
        high_water: float = 0.9,
        low_water: float = 0.75,
    ) -> tuple[Store, Path | None]:
        """Open (or create) the environment at *path*.

        A cache may always start cold: if the environment will not open, or
        holds another format, it is moved aside and a new one is created.

        :returns: the store, and where a broken environment was moved (or ``None``).
        """
        moved: Path | None = None
        try:
            env = open_env(path, map_size, sync, max_readers)
            check_format(env)
            check_crash(env, sync)
        except (lmdb.Error, StoreError) as exc:
            moved = move_aside(path)
            log.error(
                "cache environment %s would not open (%s): moved it to %s, starting empty",
                path,
                exc,
                moved,
            )
            env = open_env(path, map_size, sync, max_readers)
        stale = env.reader_check()
        if stale:
            log.warning("cleared %d stale reader slots left by dead processes", stale)
        store = cls(env, clock_ms=clock_ms, high_water=high_water, low_water=low_water)
        store._mark(clean=False)
        return store, moved

    def close(self) -> None:
        """Record a clean shutdown, flush everything to disk, close."""
        self._mark(clean=True)
        self.env.close()
        self.stamps.close()

    def _mark(self, *, clean: bool) -> None:
        with self.env.begin(write=True, db=self.meta) as txn:
            txn.put(b"boot_id", boot_id())
            txn.put(b"clean", b"1" if clean else b"0")
        self.env.sync(True)

    # -- reading -------------------------------------------------------------

    def view(self) -> ReadView:
        """A read snapshot; the caller must :meth:`ReadView.close` it.

        Cheap: py-lmdb keeps an aborted read transaction as a spare and
        renews it at the next ``begin``.
        """
        return ReadView(self.env.begin(buffers=True), self.data, self.clock_ms())

    def get_reply(self, key: bytes, null: bytes) -> bytes:
        """:meth:`get_replies` for one key (the unpipelined client's shape, kept
        apart because it is the hottest path and a list costs 0.5 µs of it)."""
        txn = self.env.begin(db=self.data, buffers=True)
        try:
            raw = txn.get(key)
            if raw is None:
                return null
            expires = HEADER.unpack_from(raw)[0]
            if expires and expires <= self.clock_ms():
                return null
            return b"$%d\r\n%b\r\n" % (len(raw) - 8, raw[8:])  # type: ignore[str-format]
        finally:
            txn.abort()

    def get_replies(self, keys: list[bytes], null: bytes) -> list[bytes]:
        """``GET`` of each key as a RESP bulk reply (*null* on a miss), in one
        short read transaction, without a :class:`ReadView`: the server's fast path."""
        now = self.clock_ms()
        replies = []
        txn = self.env.begin(db=self.data, buffers=True)
        try:
            get = txn.get
            expiry = HEADER.unpack_from
            for key in keys:
                raw = get(key)
                if raw is None:
                    replies.append(null)
                    continue
                expires = expiry(raw)[0]
                if expires and expires <= now:
                    replies.append(null)
                else:
                    # %b takes the buffer at run time; typeshed knows only bytes.
                    replies.append(b"$%d\r\n%b\r\n" % (len(raw) - 8, raw[8:]))  # type: ignore[str-format]
        finally:
            txn.abort()
        return replies

    @contextmanager
    def reading(self) -> Iterator[ReadView]:
        view = self.view()
        try:
            yield view
        finally:
            view.close()

    def count(self) -> int:
        """Entries stored, including expired ones not yet swept (as Redis counts)."""
        with self.env.begin() as txn:
            return int(txn.stat(self.data)["entries"])

    def scan(
        self, cursor: bytes, count: int, match: bytes | None = None
    ) -> tuple[bytes, list[bytes]]:
        """Up to *count* keys after *cursor* (``b""``: from the start), live only.

        :returns: the next cursor (``b""`` when the walk is done) and the keys.
        """
        pattern = re.compile(fnmatch.translate(match.decode("latin-1"))) if match else None
        keys: list[bytes] = []
        last = b""
        now = self.clock_ms()
        with self.env.begin(db=self.data) as txn, txn.cursor() as cur:
            found = cur.set_range(cursor) if cursor else cur.first()
            if found and cursor and cur.key() == cursor:
                found = cur.next()
            examined = 0
            while found and examined < count:
                key, raw = cur.item()
                last, examined = key, examined + 1
                expires = expiry_of(raw)
                live = not expires or expires > now
                if live and (pattern is None or pattern.match(key.decode("latin-1"))):
                    keys.append(key)
                found = cur.next()
        return (last if found else b""), keys

    def usage(self) -> Usage:
        """How much of the map the live pages take."""
        with self.env.begin() as txn:
            pages = 0
            entries = 0
            psize = 4096
            for db in (None, self.data, self.expiry, self.meta):
                stat = txn.stat(db) if db is not None else self.env.stat()
                psize = stat["psize"]
                pages += stat["branch_pages"] + stat["leaf_pages"] + stat["overflow_pages"]
                if db is self.data:
                    entries = stat["entries"]
        map_size = int(self.env.info()["map_size"])
        return Usage(map_size, pages * psize, entries, psize)

    # -- writing -------------------------------------------------------------

    def apply(self, ops: Sequence[Op]) -> list[object]:
        """Apply *ops* in order in one transaction; a result per op.

        A full map is answered by evicting down to the low-water mark and
        trying again; ops that still do not fit get a :class:`StoreFull`
        result, and the others are committed.
        """
        self._make_room(ops)
        try:
            return self._commit(ops)
        except lmdb.MapFullError:
            pass
        self.evict(self.low_water)
        try:
            return self._commit(ops)
        except lmdb.MapFullError:
            log.warning("cache full after eviction: committing %d writes one by one", len(ops))
        results: list[object] = []
        for op in ops:
            try:
                results.extend(self._commit([op]))
            except lmdb.MapFullError:
                results.append(StoreFull())
        return results

    def _make_room(self, ops: Sequence[Op]) -> None:
        """Evict before the map is full: in a full map even a delete can fail,
        since LMDB copies the pages it changes. Usage is measured once every
        1% of the map written, not at every commit."""
        self._unchecked += sum([len(op.value) for op in ops if type(op) is Set]) + 64 * len(ops)
        if self._unchecked < self._check_every:
            return
        self._unchecked = 0
        if self.over_high_water():
            self.evict(self.low_water)

    def _commit(self, ops: Sequence[Op]) -> list[object]:
        now = self.clock_ms()
        data, expiry = self.data, self.expiry
        with self.env.begin(write=True) as txn:
            put = txn.put
            results: list[object] = []
            for op in ops:
                # A plain SET, nearly every write, inline: what apply_op does for
                # it, without the calls (measured: 2.4 -> 1.6 µs a write).
                if type(op) is Set and not op.condition and not op.keep_ttl:
                    expires = op.expires_ms
                    put(op.key, HEADER.pack(expires) + op.value, db=data)
                    if expires:
                        put(INDEX.pack(expires) + op.key, b"", db=expiry)
                    results.append(True)
                else:
                    results.append(apply_op(txn, (data, expiry), op, now))
        self.stamps.count(ops)
        return results

    # -- housekeeping --------------------------------------------------------

    def sweep(self, limit: int) -> int:
        """Remove expired entries, looking at most *limit* index entries, in one
        small transaction; the number of entries removed."""
        now = self.clock_ms()
        removed = 0
        with self.env.begin(write=True) as txn, txn.cursor(db=self.expiry) as cur:
            found = cur.first()
            looked = 0
            while found and looked < limit:
                index_key = cur.key()
                if INDEX.unpack_from(index_key)[0] > now:
                    break
                removed += self._drop_indexed(txn, index_key)
                cur.delete()
                found = bool(cur.key())  # delete() moved to the next key, if any
                looked += 1
        self.expirations += removed
        return removed

    def _drop_indexed(self, txn: lmdb.Transaction, index_key: bytes) -> int:
        """Delete the entry an index key names if the index key is current (the
        entry still carries that expiry); 1 if it did. The index is lazy: a
        rewrite or a delete leaves the old index key behind, and it is
        dropped here when its time comes."""
        key = index_key[8:]
        raw = txn.get(key, db=self.data)
        if raw is None or expiry_of(raw) != INDEX.unpack_from(index_key)[0]:
            return 0
        txn.delete(key, db=self.data)
        return 1

    def evict(self, target: float, batch: int = 1000) -> int:
        """Evict soonest-to-expire entries until at most *target* of the map is used.

        Each batch is its own transaction, so the writer is never held long.
        """
        evicted = 0
        while self.usage().fraction > target:
            try:
                done, expired, looked = self._evict_batch(batch)
            except lmdb.MapFullError:
                if batch == 1:
                    log.error("the cache map is too full to evict from; raise cache.map_size")
                    break
                batch = max(1, batch // 4)
                continue
            self.expirations += expired
            evicted += done - expired
            if looked == 0:
                break
        self.evictions += evicted
        if evicted:
            log.info("evicted %d entries to bring the map under %.0f%%", evicted, target * 100)
        return evicted

    def _evict_batch(self, batch: int) -> tuple[int, int, int]:
        """Remove up to *batch* entries, soonest-to-expire first, then (when no
        entry with a TTL is left) entries without one.

        :returns: entries removed, how many of those had expired, and index or
            data keys looked at (0: there is nothing left to evict).
        """
        now = self.clock_ms()
        done = expired = looked = 0
        with self.env.begin(write=True) as txn:
            with txn.cursor(db=self.expiry) as cur:
                found = cur.first()
                while found and looked < batch * 4 and done < batch:
                    index_key = cur.key()
                    dropped = self._drop_indexed(txn, index_key)
                    done += dropped
                    expired += dropped and INDEX.unpack_from(index_key)[0] <= now
                    cur.delete()
                    found = bool(cur.key())  # delete() moved to the next key, if any
                    looked += 1
            if not found and done < batch:
                with txn.cursor(db=self.data) as cur:
                    found = cur.first()
                    while found and done < batch:
                        cur.delete()
                        found = bool(cur.key())
                        done += 1
                        looked += 1
        return done, expired, looked

    def over_high_water(self) -> bool:
        return self.usage().fraction > self.high_water
