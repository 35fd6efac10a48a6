"""The multicast sockets and the receive thread of ``sleigh-mcastd``.

Two UDP sockets: one bound to ``group:port`` that joined the group on the
configured interface (receiving), and one connected to ``group:port`` with
``IP_MULTICAST_IF`` pinned to that interface (sending). Loopback of our own
datagrams (``IP_MULTICAST_LOOP``) is on only when the interface is a
loopback address, where every member of the cluster is on this machine.

Two receive paths (``replicator.receive_path``): a thread doing blocking
receives (Python releases the GIL while it waits) that hands datagrams to
the event loop in batches, one wake-up per batch; or the event loop itself
draining the non-blocking socket whenever it is readable. Both take every
datagram already queued in one call (``recvmmsg``, see
:mod:`sleigh.core_ext.mmsg`), and the daemon sends the same way
(``sendmmsg``).
Neither is asyncio's datagram endpoint, which pays a callback per datagram.
``scripts/bench_replicator.py`` measures the raw paths ("receive path") and
the daemon with either (``--receive-path``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable

from ...core_ext.mmsg import BatchSocket
from .config import ReplicatorConfig

log = logging.getLogger("sleigh.replicator.net")

#: Linux's SO_RCVBUFFORCE / SO_SNDBUFFORCE (typeshed lacks them): root may pass rmem_max.
SO_RCVBUFFORCE = int(getattr(socket, "SO_RCVBUFFORCE", 33))
SO_SNDBUFFORCE = int(getattr(socket, "SO_SNDBUFFORCE", 32))
#: How long stopping waits for the receive thread (seconds).
JOIN = 1.0
#: The GIL switch interval the receive thread asks for (seconds).
SWITCH_INTERVAL = 0.001


def _buffer(sock: socket.socket, option: int, force: int, size: int) -> int:
    """Ask for a socket buffer of *size*; root may pass ``rmem_max`` (``*BUFFORCE``)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, force, size)
        return int(sock.getsockopt(socket.SOL_SOCKET, option)) // 2
    sock.setsockopt(socket.SOL_SOCKET, option, size)
    return int(sock.getsockopt(socket.SOL_SOCKET, option)) // 2


def is_loopback(cfg: ReplicatorConfig) -> bool:
    return ipaddress.IPv4Address(cfg.interface).is_loopback


def open_receiver(cfg: ReplicatorConfig) -> socket.socket:
    """The socket bound to the group's port that joined the group on ``cfg.interface``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        got = _buffer(sock, socket.SO_RCVBUF, SO_RCVBUFFORCE, cfg.rcvbuf)
        if got < cfg.rcvbuf // 2:
            log.warning("SO_RCVBUF is %d bytes, asked for %d (raise rmem_max)", got, cfg.rcvbuf)
        sock.bind((cfg.group, cfg.port))
        membership = socket.inet_aton(cfg.group) + socket.inet_aton(cfg.interface)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
        # Blocking without a timeout: with one, every recv is a poll() and a recv().
        sock.setblocking(True)
    except OSError as exc:
        sock.close()
        raise OSError(
            f"cannot join {cfg.group}:{cfg.port} on {cfg.interface}: {exc}"
            " (check replicator.interface and that the interface has MULTICAST on)"
        ) from exc
    return sock


def open_sender(cfg: ReplicatorConfig) -> socket.socket:
    """The socket connected to the group, sending on ``cfg.interface`` only."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        _buffer(sock, socket.SO_SNDBUF, SO_SNDBUFFORCE, cfg.sndbuf)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(cfg.interface))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, cfg.ttl)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, int(is_loopback(cfg)))
        sock.bind((cfg.interface, 0))
        sock.connect((cfg.group, cfg.port))
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot send to {cfg.group}:{cfg.port} on {cfg.interface}: {exc}") from exc
    return sock


Batch = Callable[[list[tuple[bytes, float]]], None]


class ReceiveThread:
    """Blocking receives in a thread; batches of ``(datagram, time)`` to *deliver* in the loop.

    :param limit: bytes read per datagram: one more than the largest allowed, so
        an oversized datagram is seen as such.
    """

    def __init__(
        self, sock: socket.socket, loop: asyncio.AbstractEventLoop, deliver: Batch, limit: int
    ) -> None:
        self.sock = sock
        self.loop = loop
        self.deliver = deliver
        self.limit = limit
        self.datagrams = 0
        self.wakeups = 0
        self._queue: deque[tuple[bytes, float]] = deque()
        self._scheduled = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mcastd-receive", daemon=True)

    def start(self) -> None:
        # The loop holds the GIL while it works, and the thread needs it after every
        # batch to queue what it took: with Python's 5 ms switch interval the kernel's
        # buffer can overflow while the loop is busy, so the thread gets in every 1 ms.
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
        self._thread.start()

    def _run(self) -> None:
        recv_batch = BatchSocket(self.sock, self.limit).recv_batch
        queue, clock = self._queue, time.time
        while True:
            try:
                batch = recv_batch()
            except OSError as exc:
                if not self._stop.is_set():
                    log.error("receiving failed: %s", exc)
                return
            if self._stop.is_set():
                return
            if not batch:  # an empty datagram
                continue
            now = clock()
            queue.extend([(data, now) for data in batch])
            self.datagrams += len(batch)
            if not self._scheduled:
                self._scheduled = True
                self.wakeups += 1
                try:
                    self.loop.call_soon_threadsafe(self._drain)
                except RuntimeError:  # the loop closed under us: we are stopping
                    return

    def poll(self) -> None:
        """Deliver now what the thread has queued (called in the loop, before timers run)."""
        if self._queue:
            self._drain()

    def _drain(self) -> None:
        self._scheduled = False
        queue = self._queue
        batch = [queue.popleft() for _ in range(len(queue))]
        if batch:
            self.deliver(batch)

    def stop(self) -> None:
        """Stop the thread and deliver what it queued.

        ``shutdown`` wakes a ``recv`` blocked on a UDP socket (Linux says
        ENOTCONN for an unconnected one, and wakes it all the same).
        """
        self._stop.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(JOIN)
        self._drain()


class ReadyReceiver:
    """The event loop drains the socket whenever it is readable (``receive_path = reader``).

    One wake-up per batch as with :class:`ReceiveThread`, but no thread and no
    GIL hand-off.
    """

    #: Datagrams taken per wake-up at most, so timers and the feed are not starved.
    BATCH = 1024

    def __init__(
        self, sock: socket.socket, loop: asyncio.AbstractEventLoop, deliver: Batch, limit: int
    ) -> None:
        self.sock = sock
        self.loop = loop
        self.deliver = deliver
        self.limit = limit
        self.datagrams = 0
        self.wakeups = 0
        self._batches = BatchSocket(sock, limit)

    def start(self) -> None:
        self.sock.setblocking(False)
        self.loop.add_reader(self.sock.fileno(), self._ready)

    def _ready(self) -> None:
        recv_batch = self._batches.recv_batch
        batch: list[tuple[bytes, float]] = []
        now = time.time()
        while len(batch) < self.BATCH:
            try:
                got = recv_batch()
            except BlockingIOError:
                break
            except OSError as exc:
                log.error("receiving failed: %s", exc)
                break
            batch.extend([(data, now) for data in got])
        self.wakeups += 1
        self.datagrams += len(batch)
        if batch:
            self.deliver(batch)

    def poll(self) -> None:
        """Deliver now what the socket holds (called before timers run)."""
        self._ready()

    def stop(self) -> None:
        """Stop watching the socket, after delivering what it holds."""
        self._ready()
        self.loop.remove_reader(self.sock.fileno())


def open_receive_path(
    kind: str, sock: socket.socket, loop: asyncio.AbstractEventLoop, deliver: Batch, limit: int
) -> ReceiveThread | ReadyReceiver:
    """The receiver ``replicator.receive_path`` names."""
    cls = ReadyReceiver if kind == "reader" else ReceiveThread
    return cls(sock, loop, deliver, limit)


def kernel_drops() -> int:
    """``RcvbufErrors`` of UDP in this network namespace (``/proc/net/snmp``)."""
    try:
        with open("/proc/net/snmp") as f:
            lines = [line.split() for line in f if line.startswith("Udp:")]
    except OSError:
        return -1
    if len(lines) < 2:
        return -1
    return int(dict(zip(lines[0][1:], lines[1][1:], strict=False)).get("RcvbufErrors", -1))
