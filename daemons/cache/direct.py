"""Direct reads of the cache's LMDB file, bypassing the daemon.

Every process on the host may read ``sleigh-cached``'s environment through
the shared memory map; only the daemon writes. The database ``data`` maps
a key to an 8-byte little-endian expiry (milliseconds since the Unix epoch,
``0`` = never) followed by the payload. An entry whose expiry is ``<= now``
is a miss, always.

Invariants kept by :class:`DirectReader`:

* **One open per process.** LMDB forbids opening one environment twice in a
  process (its ``fcntl`` locks belong to the process, so closing a second
  handle releases the first one's); py-lmdb refuses the second open. Share
  one reader per path (:func:`shared_reader`).
* **Fork-safe.** A child never uses, nor closes, the handle it inherited:
  closing it would free the parent's reader-table slot (LMDB would then let
  the writer recycle pages the parent is reading). The child drops its
  references (py-lmdb's deallocator does nothing to LMDB in a process that
  did not open the handle) and reopens on first use. The drop happens in an
  ``os.register_at_fork`` hook, so the hot path pays no ``getpid()``; the
  once-a-second check compares the pid too, for forks that bypass the hook.
* **Replaced environments are followed.** Once a second (on the reader's
  clock) the ``(st_dev, st_ino)`` of ``data.mdb`` is compared with the file
  that was opened; if the daemon moved the environment aside and made a new
  one, the old handle is dropped and the new one opened.
* **A missing environment is a miss**, and the open is retried at most
  once a second.
* **A kept object is current.** :meth:`DirectReader.get_many_shared` hands out
  an object it decoded before only while the daemon's write stamps
  (:mod:`.stamps`) say nothing wrote its key since, and only until it expires.

A reader may be used from several threads; :meth:`DirectReader.close` must
not race reads.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import lmdb

from .readstats import Publisher
from .stamps import FILENAME as STAMPS
from .stamps import Kept, Receipt, StampReader

__all__ = ["DirectReader", "release_reader", "shared_reader"]

log = logging.getLogger("sleigh.cache.direct")

T = TypeVar("T")

_HEADER: Final = struct.Struct("<Q")
_HEADER_SIZE: Final = _HEADER.size
_NS_PER_MS: Final = 1_000_000
#: How often (ns on the reader's clock) the file identity and pid are checked,
#: and how often a failed open is retried.
_RECHECK_NS: Final = 1_000 * _NS_PER_MS

_LIVE: weakref.WeakSet[DirectReader] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for reader in list(_LIVE):
        reader._drop_inherited()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class DirectReader:
    """Read-only, lazily opened view of the cache environment at *path*.

    :param path: the LMDB environment directory (``CacheConfig.env_path(home)``).
    :param clock_ms: wall-clock milliseconds since the epoch; expiries are judged,
        and the once-a-second checks are paced, by it. Default: ``time.time_ns``.
    :param max_readers: reader slots, only honoured if this process creates the
        lock file (the daemon normally has).
    """

    def __init__(
        self, path: Path, *, clock_ms: Callable[[], int] | None = None, max_readers: int = 512
    ) -> None:
        self.path = Path(path)
        self._data_file = self.path / "data.mdb"
        self._max_readers = max_readers
        if clock_ms is None:
            self._now_ns: Callable[[], int] = time.time_ns
        else:
            self._now_ns = lambda: clock_ms() * _NS_PER_MS
        self._lock = threading.Lock()
        self._env: lmdb.Environment | None = None
        self._db: Any = None
        self._begin: Any = None
        self._pid = 0
        self._file: tuple[int, int] | None = None
        # The hot path trusts the open handle while checked_ns <= now < check_ns.
        self._checked_ns = 0
        self._check_ns = 0
        self._retry_ns = 0
        self.hits = 0
        self.misses = 0
        self._kept: Kept | None = None  # None: no stamps, nothing kept
        self._stats = Publisher(self.path)
        _LIVE.add(self)

    # -- state ------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """Whether the environment is open now (no check, no I/O: for a miss's
        caller to tell "not in the cache" from "no cache file here")."""
        return self._env is not None

    @property
    def available(self) -> bool:
        """Whether the environment exists and is open (tries to open it, paced)."""
        now = self._now_ns()
        if not (self._checked_ns <= now < self._check_ns):
            return self._refresh(now)
        return True

    def close(self) -> None:
        """Close the environment; a later read opens it again."""
        if self.hits or self.misses:
            self._stats.publish(self.hits, self.misses)
        self._stats.close()
        with self._lock:
            env = self._env
            self._forget()
            self._retry_ns = 0
            if env is not None and self._pid == os.getpid():
                env.close()

    def _forget(self) -> None:
        self._env = self._db = self._begin = None
        self._kept = None
        self._file = None
        self._checked_ns = self._check_ns = 0

    def _drop_inherited(self) -> None:
        """In a forked child: let go of the parent's handle without touching LMDB."""
        self.hits = self.misses = 0  # the parent's reads are the parent's to count
        self._forget()
        self._retry_ns = 0
        self._lock = threading.Lock()

    def _refresh(self, now: int) -> bool:
        """Slow path: validate or (re)open the handle; whether one is open."""
        if self.hits or self.misses:
            self._stats.publish(self.hits, self.misses)
        with self._lock:
            if self._checked_ns <= now < self._check_ns:
                return True
            if self._env is not None and (
                self._pid != os.getpid() or _file_id(self._data_file) != self._file
            ):
                log.info("cache environment at %s was replaced or inherited: reopening", self.path)
                self._forget()  # dropped, not closed: see the module docstring
            if self._env is None:
                if self._retry_ns <= now < self._retry_ns + _RECHECK_NS:
                    return False
                self._retry_ns = now
                self._open()
            if self._env is None:
                return False
            self._checked_ns, self._check_ns = now, now + _RECHECK_NS
            return True

    def _open(self) -> None:
        before = _file_id(self._data_file)
        if before is None:
            return
        try:
            env = lmdb.open(
                str(self.path),
                map_size=0,  # 0: the size recorded in the file
                subdir=True,
                readonly=True,
                create=False,
                lock=True,
                readahead=False,
                max_dbs=4,
                max_readers=self._max_readers,
                # No cached read transaction: between reads this process holds no
                # reader slot, so a forked child's copy of the handle owns nothing of
                # the parent's (py-lmdb frees a cached slot when the child drops it).
                max_spare_txns=0,
            )
        except lmdb.Error as exc:
            log.warning("cannot open the cache environment at %s: %s", self.path, exc)
            return
        try:
            db = env.open_db(b"data", create=False)
        except lmdb.Error as exc:
            env.close()
            log.warning("cache environment at %s has no data database yet: %s", self.path, exc)
            return
        self._env, self._db, self._begin = env, db, env.begin
        stamps = StampReader.open(self.path / STAMPS)
        self._kept = None if stamps is None else Kept(stamps)
        self._pid = os.getpid()
        self._file = before

    def _resized_txn(self) -> Any:
        """After ``MapResizedError``: adopt the map the daemon grew, then begin again."""
        env = self._env
        assert env is not None
        env.set_mapsize(0)
        return self._begin(self._db, None, False, True)

    # -- reads --------------------------------------------------------------

    def get_decoded(self, key: bytes, decode: Callable[[memoryview], T]) -> T | None:
        """The hot path: the live value for *key*, decoded from a zero-copy buffer.

        :param key: 1 to 511 bytes.
        :param decode: called inside the read transaction; it must not keep the buffer.
        :returns: ``decode(payload)``, or ``None`` on a miss, an expired entry or
            no environment.
        """
        now = self._now_ns()
        if not (self._checked_ns <= now < self._check_ns) and not self._refresh(now):
            return None
        try:
            txn = self._begin(self._db, None, False, True)  # buffers=True: zero-copy
        except lmdb.MapResizedError:
            txn = self._resized_txn()
        try:
            buf = txn.get(key)
            if buf is None:
                self.misses += 1
                return None
            expiry = _HEADER.unpack_from(buf)[0]
            if expiry and expiry * _NS_PER_MS <= now:
                self.misses += 1
                return None
            self.hits += 1
            return decode(buf[_HEADER_SIZE:])
        except struct.error:  # shorter than its header: not written by the daemon
            return None
        finally:
            txn.abort()

    def get_many_decoded(
        self, keys: Sequence[bytes], decode: Callable[[memoryview], T]
    ) -> list[T | None]:
        """:meth:`get_decoded` for each key, all in one read transaction."""
        now = self._now_ns()
        if not (self._checked_ns <= now < self._check_ns) and not self._refresh(now):
            return [None] * len(keys)
        out: list[T | None] = []
        append = out.append
        unpack = _HEADER.unpack_from
        try:
            txn = self._begin(self._db, None, False, True)  # buffers=True: zero-copy
        except lmdb.MapResizedError:
            txn = self._resized_txn()
        try:
            get = txn.get
            for key in keys:
                buf = get(key)
                if buf is None:
                    append(None)
                    continue
                expiry = unpack(buf)[0]
                if expiry and expiry * _NS_PER_MS <= now:
                    append(None)
                else:
                    append(decode(buf[_HEADER_SIZE:]))
            found = len(out) - out.count(None)
            self.hits += found
            self.misses += len(out) - found
            return out
        finally:
            txn.abort()

    def get_many_shared(
        self,
        keys: Sequence[bytes],
        decode: Callable[[memoryview], T],
        receipt: Receipt | None = None,
    ) -> list[T | None]:
        """:meth:`get_many_decoded` for objects no caller changes: an object decoded
        before is handed out again, with no transaction and no decode, while the
        write stamps say its key was not written since and it has not expired.
        *receipt* notes what each object was read under (:meth:`vouches`)."""
        now = self._now_ns()
        if not (self._checked_ns <= now < self._check_ns) and not self._refresh(now):
            if receipt is not None:
                receipt.missing()
            return [None] * len(keys)
        kept = self._kept
        if kept is None:  # a daemon without stamps: nothing can be vouched for
            if receipt is not None:
                receipt.missing()
            return self.get_many_decoded(keys, decode)
        out, unread, epoch = kept.take(keys, now, receipt)
        if unread:
            try:
                txn = self._begin(self._db, None, False, True)  # buffers=True: zero-copy
            except lmdb.MapResizedError:
                txn = self._resized_txn()
            try:
                kept.read(txn.get, unread, out, decode, epoch, now, receipt)
            finally:
                txn.abort()
        found = len(out) - out.count(None)
        self.hits += found
        self.misses += len(out) - found
        return out

    def vouches(self, receipt: Receipt) -> bool:
        """Whether what *receipt*'s reads handed out is still what a read would hand out
        (see :mod:`.stamps`); ``False`` also when that cannot be told now (the file is
        due a check: the next read makes it)."""
        now = self._now_ns()
        kept = self._kept
        if kept is None or not (self._checked_ns <= now < self._check_ns):
            return False
        return kept.vouches(receipt, now)

    def get(self, key: bytes) -> bytes | None:
        """The raw payload (header stripped), or ``None`` on a miss."""
        return self.get_decoded(key, bytes)

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """Raw payloads for *keys*, in one read transaction."""
        return self.get_many_decoded(keys, bytes)

    def pttl(self, key: bytes) -> int:
        """Milliseconds *key* has left: ``-2`` missing or expired, ``-1`` no expiry."""
        now = self._now_ns()
        if not (self._checked_ns <= now < self._check_ns) and not self._refresh(now):
            return -2
        try:
            txn = self._begin(self._db, None, False, True)  # buffers=True: zero-copy
        except lmdb.MapResizedError:
            txn = self._resized_txn()
        try:
            buf = txn.get(key)
            if buf is None:
                return -2
            expiry: int = _HEADER.unpack_from(buf)[0]
        finally:
            txn.abort()
        if expiry == 0:
            return -1
        left = expiry - now // _NS_PER_MS
        return left if left > 0 else -2


_SHARED: dict[Path, tuple[DirectReader, int]] = {}
_SHARED_LOCK = threading.Lock()


def shared_reader(path: Path) -> DirectReader:
    """This process's reader for the environment at *path*, counted; see :func:`release_reader`.

    A process must hold one handle per environment (see the module docstring), so
    clients share readers through this registry. After a fork the child inherits the
    registry and its readers, which reopen on first use.
    """
    key = Path(os.path.abspath(path))
    with _SHARED_LOCK:
        reader, count = _SHARED.get(key, (None, 0))
        if reader is None:
            reader = DirectReader(key)
        _SHARED[key] = (reader, count + 1)
        return reader


def release_reader(reader: DirectReader) -> None:
    """Give back a reader from :func:`shared_reader`; the last release closes it."""
    with _SHARED_LOCK:
        entry = _SHARED.get(reader.path)
        if entry is None or entry[0] is not reader:
            return
        if entry[1] > 1:
            _SHARED[reader.path] = (reader, entry[1] - 1)
            return
        del _SHARED[reader.path]
    reader.close()
