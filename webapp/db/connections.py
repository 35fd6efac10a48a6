"""A process's own PostgreSQL connections for the catalog's reads (see :mod:`.reads`).

Each read is one ``SELECT`` on one connection: it is taken (an idle one, else a
new one while fewer than *size* are open, else the first to come back, in the
order callers asked), used, and given back. Nothing else is done on the way in
or out, which is the point: asyncpg's own pool creates a task on every release,
sets up a timeout on every acquire and, by default, sends a reset query on every
release. In one run of ``scripts/bench_reads.py`` a stock query cost 81-92 µs of
CPU this way, 115-130 through asyncpg's pool with no reset and 207-224 with its
default one. A read leaves no session state behind (no transaction, lock,
cursor, ``LISTEN`` or ``SET``), so there is nothing to reset.

A connection whose read failed or was cancelled is closed, never reused: its
state is unknown. One that the server or the network closed while it was idle is
noticed when it is taken, and replaced. One closed so lately that the event loop
has not heard of it yet (a server restarted, a backend ended) fails its read with
the connection lost: that read runs once more, on a new connection, after the other
idle ones are closed too (a restart ends them all). A read is a ``SELECT``, so
running it again is safe. A connection idle for :data:`IDLE_LIFETIME` is closed
when a read next comes by, as asyncpg's pool closes one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["IDLE_LIFETIME", "ReadConnections"]

log = logging.getLogger("sleigh.db")

#: Seconds an idle connection is kept (asyncpg's pool: ``max_inactive_connection_lifetime``).
IDLE_LIFETIME = 300.0


def _lost(exc: BaseException) -> bool:
    """Whether *exc* says the connection itself is gone, not that the read was wrong."""
    import asyncpg

    return isinstance(exc, (asyncpg.PostgresConnectionError, ConnectionError))


class ReadConnections:
    """At most *size* asyncpg connections made with *connect* (``asyncpg.connect``'s
    arguments); a read waits at most *wait* seconds for one when all are in use.
    Not thread-safe: one event loop uses it (a forked child calls :meth:`forget`).

    :param idle: seconds an idle connection is kept.
    :param clock: monotonic seconds (a parameter, for tests).
    """

    def __init__(
        self,
        connect: dict[str, Any],
        size: int,
        wait: float,
        *,
        idle: float = IDLE_LIFETIME,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connect = connect
        self.size = size
        self.wait = wait
        self.idle = idle
        self.clock = clock
        #: idle connections, each with when it was given back: the oldest first
        self._idle: list[tuple[Any, float]] = []
        #: connections taken or being opened, each holding one of the *size* places
        self._out = 0
        #: callers waiting for a place: given a connection, or ``None`` (open one)
        self._waiting: deque[asyncio.Future[Any]] = deque()
        #: the connections made since the last :meth:`close` (others are closed on return)
        self._made: set[Any] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        #: reads that waited for a connection (every place taken), those that gave up,
        #: and those run again after their connection was lost
        self.waits = 0
        self.timeouts = 0
        self.retries = 0
        #: counts :meth:`close` and :meth:`forget`: a connection opened across one of
        #: them holds no place of the new count
        self._generation = 0

    async def fetch(self, sql: str, args: Sequence[Any]) -> Sequence[Sequence[Any]]:
        """The rows of *sql* with *args*, read on a connection taken for it (again on a
        new one if that connection was lost; see the module's docstring)."""
        conn, reused = await self._take()
        try:
            found: Sequence[Sequence[Any]] = await conn.fetch(sql, *args)
        except BaseException as exc:
            self._drop(conn)
            if not (reused and _lost(exc)):
                raise
            self.retries += 1
            log.warning("a database read connection was lost (%s): reading again on a new one", exc)
            self._close_idle()
            conn, _ = await self._take()
            try:
                found = await conn.fetch(sql, *args)
            except BaseException:
                self._drop(conn)
                raise
        self._give(conn)
        return found

    @property
    def open(self) -> int:
        """Connections open now: idle, and in use or being opened."""
        return len(self._idle) + self._out

    async def _take(self) -> tuple[Any, bool]:
        """A connection, and whether it was idle (else it is new)."""
        idle = self._idle
        if idle:
            expired = self.clock() - self.idle
            while idle and idle[0][1] < expired:
                self._drop_idle(idle.pop(0)[0])
        while idle:
            conn = idle.pop()[0]
            if not conn.is_closed():
                self._out += 1
                return conn, True
            self._made.discard(conn)
        if self._out < self.size:
            self._out += 1
            return await self._new(), False
        conn = await self._queue()
        return (await self._new(), False) if conn is None else (conn, True)

    async def _new(self) -> Any:
        """A new connection, in a place already held."""
        import asyncpg

        generation = self._generation
        try:
            conn = await asyncpg.connect(**self.connect)
        except BaseException:
            if generation == self._generation:
                self._free()
            raise
        if generation == self._generation:
            self._made.add(conn)
        return conn

    async def _queue(self) -> Any:
        """Wait for a place: a connection given back, or ``None`` to open one."""
        loop = self._loop
        if loop is None or not loop.is_running():
            # (asked once: on Python 3.11 each ask is a getpid() system call)
            loop = self._loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._waiting.append(waiter)
        self.waits += 1
        timer = loop.call_later(self.wait, self._expire, waiter)
        try:
            return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                conn = waiter.result()  # a place came as we gave up
                if conn is None:
                    self._free()
                else:
                    self._give(conn)
            else:
                waiter.cancel()
            raise
        finally:
            timer.cancel()

    def _expire(self, waiter: asyncio.Future[Any]) -> None:
        if not waiter.done():
            self.timeouts += 1
            waiter.set_exception(
                TimeoutError(
                    f"no database read connection free within {self.wait:g}s"
                    f" ({self.size} in use: database.read_connections)"
                )
            )

    def _handed(self, conn: Any) -> bool:
        """Hand *conn* (``None``: a free place) to the first caller still waiting."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    def _give(self, conn: Any) -> None:
        if conn not in self._made:  # made before close(): it goes
            conn.terminate()
        elif conn.is_closed():
            self._drop(conn)
        elif not self._handed(conn):
            self._out -= 1
            self._idle.append((conn, self.clock()))

    def _drop(self, conn: Any) -> None:
        conn.terminate()
        if conn in self._made:
            self._made.discard(conn)
            self._free()

    def _free(self) -> None:
        """A place is free: to the first caller waiting, if any."""
        if not self._handed(None):
            self._out -= 1

    def _drop_idle(self, conn: Any) -> None:
        """Close *conn*, taken from the idle ones (it held no place)."""
        conn.terminate()
        self._made.discard(conn)

    def _close_idle(self) -> None:
        for conn, _ in self._idle:
            self._drop_idle(conn)
        self._idle = []

    def close(self) -> None:
        """Close the idle connections now, and those in use when they come back; callers
        waiting open new ones."""
        self._close_idle()
        self._reset()

    def forget(self) -> None:
        """Drop every connection without closing it (they are a parent process's, as are
        the callers waiting, if any)."""
        self._waiting, self._loop = deque(), None
        self._reset()

    def _reset(self) -> None:
        self._idle, self._made = [], set()
        self._generation += 1
        waiting = [w for w in self._waiting if not w.done()]
        self._out, self._waiting = len(waiting), deque()
        for waiter in waiting:
            waiter.set_result(None)
