"""Load through the object cache: cache first, then the database, then the cache.

Models ask for objects by key; whatever the cache does not hold is loaded
from the database in one query and written back with the model's TTL. The
cache is an accelerator, never the truth: when the daemon cannot be
reached, models read the database and the shop goes on (logged, at most
once a minute).

When a popular object expires, every request that needs it misses at once.
Within a worker, requests that miss the same ids of the same kind at the same
time share one database load (the first one's), instead of each running the
same query: the database sees one query per expiry per worker, not one per
request in flight. And so that objects loaded together do not all expire
together, each write-back is kept up to :data:`JITTER` less than its TTL
(never more: the TTL is a promise about staleness).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from ...daemons.cache.client import CacheClientError
from ...daemons.cache.stamps import Receipt
from .freshness import note

log = logging.getLogger("sleigh.web.cache")

#: Key heads whose kind is remembered (past that many, a kind is worked out on each load).
_PREFIXES_KEPT = 64

#: The largest share of a TTL that a write-back may be shortened by, at random.
JITTER = 0.1

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ObjectCache(Protocol):
    """What models need of :class:`~sleigh.daemons.cache.client.AsyncCacheClient`."""

    async def get_many(
        self, keys: Sequence[str], *, shared: bool = False, receipt: Receipt | None = None
    ) -> list[object | None]: ...

    def vouches(self, receipt: Receipt) -> bool: ...

    async def set_many(self, items: Mapping[Any, object], ttl: float) -> None: ...

    async def get(self, key: str) -> object | None: ...

    async def set(self, key: str, obj: object, ttl: float, *, local: bool = False) -> None: ...

    async def delete(self, *keys: str) -> int: ...

    async def ping(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Part(Generic[K, V]):
    """Objects of one kind a page needs: ``prefix + str(id)`` in the cache, kept *ttl*
    seconds; *loader* reads the missing ones from the database."""

    prefix: str
    ids: Sequence[K]
    ttl: float
    loader: Callable[[list[K]], Awaitable[dict[K, V]]]


class Reading:
    """What a model built from reads through :class:`Through` was read under: the
    cache's :class:`~sleigh.daemons.cache.stamps.Receipt`, the shortest TTL and the
    objects read by kind, so :meth:`Through.still` can tell whether the thing built is
    still current, and count it as those reads would have been counted."""

    __slots__ = ("counts", "receipt", "ttl")

    def __init__(self) -> None:
        self.receipt = Receipt()
        self.ttl = math.inf
        #: (a kind's [hits, misses], objects read of it)
        self.counts: list[tuple[list[int], int]] = []


class Through:
    """Reads objects through *cache* (or straight from the database if ``None``).

    :param read_only: no caller changes an object it gets, so the cache may hand
        the same object to every reader of a key until the key is written (no
        decode; ``ObjectCache.get_many(shared=True)``).
    :param clock: monotonic clock for the log rate limit (a parameter for tests).
    :param rng: the randomness of the TTL jitter (a parameter for tests).
    """

    def __init__(
        self,
        cache: ObjectCache | None,
        *,
        read_only: bool = False,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.cache = cache
        self.read_only = read_only
        self._clock = clock
        self._rng = rng or random.Random()
        self._last_warning = -1e9
        self.failures = 0
        #: hits and misses by kind of object (the key's prefix without its version)
        self.kinds: dict[str, list[int]] = {}
        self._tallies: dict[str, list[int]] = {}
        #: loads from the database in progress, by (prefix, ids): shared by the
        #: requests that miss the same objects meanwhile
        self._loading: dict[tuple[str, tuple[Any, ...]], asyncio.Future[dict[Any, Any]]] = {}
        self.shared = 0
        #: the event loop of the loads above (a running loop is this thread's only one)
        self._loop: asyncio.AbstractEventLoop | None = None

    async def load(
        self,
        prefix: str,
        ids: Sequence[K],
        ttl: float,
        loader: Callable[[list[K]], Awaitable[dict[K, V]]],
    ) -> dict[K, V]:
        """The objects for *ids* (absent ones left out), keyed ``prefix + str(id)``
        in the cache and kept there *ttl* seconds."""
        return (await self.load_parts([Part(prefix, ids, ttl, loader)]))[0]

    async def load_parts(
        self, parts: Sequence[Part[Any, Any]], reading: Reading | None = None
    ) -> list[dict[Any, Any]]:
        """The objects of every part, read from the cache in one call; each part's
        misses are then loaded by its loader, in the order of *parts*. *reading* notes
        what they were read under (see :meth:`still`)."""
        for part in parts:
            if part.ids:
                note(part.ttl)
                if reading is not None and part.ttl < reading.ttl:
                    reading.ttl = part.ttl
        keys = [f"{part.prefix}{i}" for part in parts for i in part.ids]
        cached = await self._get(keys, None if reading is None else reading.receipt)
        counted = self.cache is not None
        out: list[dict[Any, Any]] = []
        at = 0
        for part in parts:
            found: dict[Any, Any] = {}
            missing = []
            for ident in part.ids:
                value = cached[at]
                at += 1
                if value is None:
                    missing.append(ident)
                else:
                    found[ident] = value
            if counted:
                tally = self._tallies.get(part.prefix) or self._tally(part.prefix)
                tally[0] += len(found)
                tally[1] += len(missing)
                if reading is not None:
                    reading.counts.append((tally, len(part.ids)))
            if missing:
                found.update(await self._load_missing(part, missing))
            out.append(found)
        return out

    async def _load_missing(self, part: Part[Any, Any], missing: list[Any]) -> dict[Any, Any]:
        """*missing* loaded by *part*'s loader and cached, or the result of the same
        load another request started (see the module docstring)."""
        flight = (part.prefix, tuple(missing))
        pending = self._loading.get(flight)
        if pending is not None:
            self.shared += 1
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not pending.cancelled() or (task is not None and task.cancelling()):
                    raise
            # The request that was loading them went away: load them here.
        loop = self._loop
        if loop is None or not loop.is_running():
            # (asked once: on Python 3.11 each ask is a getpid() system call)
            loop = self._loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[Any, Any]] = loop.create_future()
        self._loading[flight] = future
        try:
            loaded = await part.loader(missing)
            await self.store(part.prefix, loaded, part.ttl)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # marked as retrieved: there may be nobody waiting
            raise
        else:
            future.set_result(loaded)
        finally:
            del self._loading[flight]
        return loaded

    async def _get(self, keys: list[str], receipt: Receipt | None = None) -> list[object | None]:
        """The cached values of *keys* (``None``: not there, or no cache)."""
        if not keys:
            return []
        if self.cache is None:
            if receipt is not None:
                receipt.missing()
            return [None] * len(keys)
        try:
            cached = await self.cache.get_many(keys, shared=self.read_only, receipt=receipt)
        except CacheClientError as exc:
            self._warn(exc)
            if receipt is not None:
                receipt.missing()
            return [None] * len(keys)
        return cached

    def still(self, reading: Reading) -> bool:
        """Whether every object read with *reading* is still what a read would give
        (nothing written or expired since); if so, the reads are counted (hits, TTLs)
        as if they had been made again."""
        if self.cache is None or not self.cache.vouches(reading.receipt):
            return False
        note(reading.ttl)
        for tally, count in reading.counts:
            tally[0] += count
        return True

    @property
    def hits(self) -> int:
        """Objects found in the cache, every kind together."""
        return sum(tally[0] for tally in self.kinds.values())

    @property
    def misses(self) -> int:
        """Objects the cache did not hold (or could not be asked for), every kind together."""
        return sum(tally[1] for tally in self.kinds.values())

    async def one(self, key: str, ttl: float, loader: Callable[[], Awaitable[V]]) -> V:
        """One object under *key*, loaded by *loader* on a miss."""

        async def load_one(_: list[str]) -> dict[str, V]:
            return {"": await loader()}

        return (await self.load(key, [""], ttl, load_one))[""]

    async def store(self, prefix: str, loaded: Mapping[K, V], ttl: float) -> None:
        """Put *loaded* in the cache (after the database was written)."""
        if self.cache is None or not loaded:
            return
        try:
            kept = ttl * (1.0 - JITTER * self._rng.random())
            await self.cache.set_many({f"{prefix}{i}": v for i, v in loaded.items()}, kept)
        except CacheClientError as exc:
            self._warn(exc)

    async def forget(self, prefix: str, ids: Sequence[K]) -> None:
        """Drop *ids* from the cache (the database no longer has them as cached)."""
        if self.cache is None or not ids:
            return
        try:
            await self.cache.delete(*(f"{prefix}{i}" for i in ids))
        except CacheClientError as exc:
            self._warn(exc)

    def _tally(self, prefix: str) -> list[int]:
        """The [hits, misses] of the kind of *prefix*, named by what precedes its first
        colon less a version number: ``info2:`` is ``info``, ``rel:7:6`` is ``rel``."""
        head = prefix[: prefix.find(":") + 1] or prefix
        tally = self._tallies.get(head)
        if tally is None:
            kind = head.rstrip(":").rstrip("0123456789") or "other"
            tally = self.kinds.setdefault(kind, [0, 0])
            if len(self._tallies) < _PREFIXES_KEPT:
                self._tallies[head] = tally
        return tally

    def _warn(self, exc: Exception) -> None:
        self.failures += 1
        now = self._clock()
        if now - self._last_warning >= 60.0:
            self._last_warning = now
            log.warning("object cache unavailable, reading the database instead: %s", exc)
