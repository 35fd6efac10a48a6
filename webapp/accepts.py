"""Spread new connections evenly over the workers that share one listening socket.

Every ``sleigh-web`` worker on a socket handed over by ``sleigh up`` or
systemd is woken by each new connection, and the first to run used to
accept every connection waiting. Measured with ``wrk``: 32 keep-alive
connections opened at once came to rest 27 on one worker and 5 on the
other (and 31/1, 0/32), so at 65% of the pair's peak rate one worker was
saturated and the p99 was 30-58 ms; one worker alone at 70% of its own
peak had a p99 of 7 ms. nginx's keep-alive connections to the socket land
the same way.

So a worker accepts one connection per wake-up, after a look at a small
table the workers of a socket share (:class:`LoadTable`): a file under
``run/`` named after the socket's inode, memory-mapped, one slot per
worker holding its open connections, pid and heartbeat. A worker claims
its slot with an open-file-description lock, which the kernel drops when
the worker dies, and writes its count at every accept and close and every
``BEAT`` seconds. A worker holding more connections than the least loaded
live worker (heartbeat younger than ``STALE``) leaves a waiting connection
for ``DEFER`` seconds, for that worker to take, and takes it itself if it
is still waiting then: no connection waits long on a worker that is busy,
stuck or gone. A worker alone on its socket accepts at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import mmap
import os
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

log = logging.getLogger("sleigh.web.accepts")

#: Workers one socket's table has room for (``web.workers`` is at most 64).
SLOTS = 64
#: One slot: connections held, pid, heartbeat (``CLOCK_MONOTONIC`` ns, host-wide).
SLOT = struct.Struct("<IIq")
SIZE = SLOTS * SLOT.size
#: How often a worker writes its heartbeat (seconds).
BEAT = 0.5
#: A slot whose heartbeat is older than this is ignored (nanoseconds).
STALE = 2_000_000_000
#: How long a busier worker leaves a waiting connection to the others (seconds).
DEFER = 0.002
#: ``struct flock`` on 64-bit Linux: type, whence, start, length, pid (0 for OFD locks).
_FLOCK = struct.Struct("hhqqi4x")
_F_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", 37)
#: accept() errors that say the process or system is out of something: back off.
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def _lock(fd: int, start: int, length: int) -> bool:
    """Take an exclusive OFD lock on a byte range without waiting; whether it was free."""
    try:
        fcntl.fcntl(fd, _F_OFD_SETLK, _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, start, length, 0))
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def table_path(run_dir: Path, sock: socket.socket) -> Path:
    """The table of the workers sharing *sock* (its inode is the same in each of them)."""
    return run_dir / f"web-accepts-{os.fstat(sock.fileno()).st_ino}.load"


def sweep(run_dir: Path, keep: Path) -> None:
    """Remove the tables of sockets no worker serves any more (nobody holds a slot)."""
    for path in run_dir.glob("web-accepts-*.load"):
        if path == keep:
            continue
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            try:
                if _lock(fd, 0, 0):
                    path.unlink()
            finally:
                os.close(fd)


class LoadTable:
    """This worker's slot in the table of the workers sharing one socket.

    :raises OSError: if the file cannot be created or mapped.
    """

    def __init__(self, path: Path, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self.path = path
        self.clock = clock
        self.pid = os.getpid()
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            if os.fstat(self.fd).st_size < SIZE:
                os.ftruncate(self.fd, SIZE)
            self.map = mmap.mmap(self.fd, SIZE)
            free = (i for i in range(SLOTS) if _lock(self.fd, i * SLOT.size, SLOT.size))
            self.slot = next(free, -1)
        except BaseException:
            os.close(self.fd)
            raise
        if self.slot >= 0:
            self.write(0)

    def write(self, held: int) -> None:
        """Record that this worker holds *held* connections, as of now."""
        if self.slot >= 0:
            SLOT.pack_into(self.map, self.slot * SLOT.size, held, self.pid, self.clock())

    def least_other(self) -> int | None:
        """The fewest connections another live worker holds (``None``: no other)."""
        now, least, mine = self.clock(), None, self.slot
        for i, (held, pid, beat) in enumerate(SLOT.iter_unpack(self.map)):
            if i != mine and pid and now - beat < STALE and (least is None or held < least):
                least = held
        return least

    def close(self) -> None:
        """Give up the slot; remove the file if no other worker holds one (two closing
        at once may both leave it: :func:`sweep` removes it when a worker next starts)."""
        if self.slot >= 0:
            SLOT.pack_into(self.map, self.slot * SLOT.size, 0, 0, 0)
        with contextlib.suppress(OSError):
            if _lock(self.fd, 0, 0):  # our own slot's lock does not stand in the way
                self.path.unlink()
        self.map.close()
        os.close(self.fd)


class BalancedSite(web.BaseSite):
    """An aiohttp site on a listening socket that takes its share of the connections.

    :param table: the workers' shared table (``None``: accept as a lone worker).
    """

    __slots__ = ("_loop", "_name", "_paused", "_sock", "_starting", "_table", "_tasks", "_timer")

    def __init__(self, runner: web.BaseRunner, sock: socket.socket, table: LoadTable | None):
        super().__init__(runner)
        self._sock = sock
        self._table = table
        if sock.family == socket.AF_UNIX:
            self._name = f"http://unix:{sock.getsockname()}:"
        else:
            host, port = sock.getsockname()[:2]
            self._name = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None  # the heartbeat
        self._paused: asyncio.TimerHandle | None = None  # not reading, until it fires
        self._starting = 0
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def name(self) -> str:
        return self._name

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        lost = server.connection_lost

        def connection_lost(handler: web.RequestHandler, exc: BaseException | None = None) -> None:
            lost(handler, exc)
            self._publish()

        # The server has no hook for a closed connection: its count is published here.
        server.connection_lost = connection_lost  # type: ignore[method-assign]
        self._sock.setblocking(False)
        self._loop.add_reader(self._sock.fileno(), self._ready)
        if self._table is not None:
            self._timer = self._loop.call_later(BEAT, self._beat)

    async def stop(self) -> None:
        self._loop.remove_reader(self._sock.fileno())
        for timer in (self._timer, self._paused):
            if timer is not None:
                timer.cancel()
        self._timer = self._paused = None
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        if self._table is not None:
            self._table.close()
            self._table = None
        await super().stop()

    def held(self) -> int:
        """Connections this worker holds (and is starting) on any socket."""
        server = self._runner.server
        return self._starting + (0 if server is None else len(server.connections))

    def _publish(self) -> None:
        if self._table is not None:
            self._table.write(self.held())

    def _beat(self) -> None:
        self._publish()
        self._timer = self._loop.call_later(BEAT, self._beat)

    def _ready(self) -> None:
        """A connection waits: take it, unless another worker holds fewer."""
        table = self._table
        if table is not None:
            least = table.least_other()
            if least is not None and self.held() > least:
                self._pause(DEFER)
                return
        self._accept()

    def _pause(self, seconds: float) -> None:
        self._loop.remove_reader(self._sock.fileno())
        self._paused = self._loop.call_later(seconds, self._resume)

    def _resume(self) -> None:
        self._paused = None
        self._loop.add_reader(self._sock.fileno(), self._ready)
        self._accept()  # still waiting after DEFER: nobody else took it

    def _accept(self) -> None:
        try:
            conn, _ = self._sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        except OSError as exc:
            if exc.errno not in _EXHAUSTED:
                raise
            log.error("cannot accept connections (%s): pausing for 100 ms", exc)
            self._pause(0.1)
            return
        conn.setblocking(False)
        if conn.family in (socket.AF_INET, socket.AF_INET6):
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._starting += 1
        task = self._loop.create_task(self._connect(conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._publish()

    async def _connect(self, conn: socket.socket) -> None:
        server = self._runner.server
        assert server is not None
        try:
            await self._loop.connect_accepted_socket(server, conn)
        except OSError as exc:
            log.debug("a connection closed before it started: %s", exc)
            conn.close()
        finally:
            self._starting -= 1


def open_table(run_dir: Path, sock: socket.socket) -> LoadTable | None:
    """The shared table for *sock* under *run_dir* (``None``, with a warning, if it cannot be)."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        path = table_path(run_dir, sock)
        sweep(run_dir, path)
        return LoadTable(path)
    except OSError as exc:
        log.warning("connections are not balanced across workers: %s", exc)
        return None
