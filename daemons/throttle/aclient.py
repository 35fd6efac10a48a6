"""The asyncio client of ``sleigh-throttled`` (the web tier's): many requests in flight
on one pipelined connection per daemon; see :mod:`.client` for the sharding."""

from __future__ import annotations

import asyncio
import collections
import json
import select
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, cast

from . import protocol as p
from .errors import ClientError, LateReply, ProtocolError
from .replies import Reply, checked_body, combine, costs_of, decode_decision
from .ring import Address, Ring

#: When a deadline finds a reply waiting unread, how long the loop gets to read it.
_READ_FIRST = 0.001


class _AsyncConn(asyncio.Protocol):
    """One pipelined connection: replies come in request order.

    A request made while none is in flight is written at once; the requests
    made while others are in flight go out in one write at the end of the
    loop's turn, so the daemon reads them in one batch (and is woken once
    for it). A caller with work to do before it waits for the reply yields
    to the loop once first when its request is :attr:`queued`: the turn's
    batch then goes out before that work, not after it. Each request has
    a deadline, ``timeout`` after it is written (a turn of the loop longer
    than the timeout must not fail the questions still waiting for their
    write: uvloop runs timers before the callbacks that would write them);
    one timer per connection, armed at the earliest, fails the requests that
    are late (their replies, if they come, are dropped).
    """

    def __init__(self, timeout: float = 0.005) -> None:
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.fd = -1  # the socket's descriptor, to see whether a reply waits unread
        self.parser = p.ReplyParser()
        self.waiting: collections.deque[asyncio.Future[tuple[int, bytes]]] = collections.deque()
        #: ``(deadline, future)`` of the requests not yet answered nor failed, oldest first.
        self.deadlines: collections.deque[tuple[float, asyncio.Future[tuple[int, bytes]]]] = (
            collections.deque()
        )
        self.timer: asyncio.TimerHandle | None = None
        self.outgoing: list[bytes] = []
        #: The futures of :attr:`outgoing`'s requests, whose deadlines start at the write.
        self.unsent: list[asyncio.Future[tuple[int, bytes]]] = []
        self.next_id = 0
        self.closed = self.loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        self.fd = -1 if sock is None else sock.fileno()

    def data_received(self, data: bytes) -> None:
        try:
            replies = self.parser.feed(data)
        except ProtocolError as exc:
            self.connection_lost(exc)
            return
        waiting, deadlines = self.waiting, self.deadlines
        for status, _, body in replies:
            if not waiting:
                break
            fut = waiting.popleft()
            if deadlines and deadlines[0][1] is fut:
                deadlines.popleft()
            if not fut.done():
                fut.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.transport.abort()
        self.transport = None
        self.outgoing.clear()
        self.unsent = []
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.deadlines.clear()
        if not self.closed.done():
            self.closed.set_result(None)
        while self.waiting:
            fut = self.waiting.popleft()
            if not fut.done():
                fut.set_exception(ClientError(f"connection to the throttle daemon lost: {exc}"))

    def send(self, op: int, body: bytes) -> asyncio.Future[tuple[int, bytes]]:
        """Queue one request, its :func:`~.protocol.request_body` given (written at once if
        none is in flight, else at the end of this loop turn: see :attr:`queued`); its
        reply's future."""
        assert self.transport is not None
        self.next_id = (self.next_id + 1) & 0xFFFFFFFF
        fut: asyncio.Future[tuple[int, bytes]] = self.loop.create_future()
        self.waiting.append(fut)
        frame = p.encode_frame(op, self.next_id, body)
        if len(self.waiting) == 1:  # nothing else in flight: no batch to wait for
            self.transport.write(frame)
            self._watch([fut])
            return fut
        if not self.outgoing:
            self.loop.call_soon(self._write)
        self.outgoing.append(frame)
        self.unsent.append(fut)
        return fut

    def _watch(self, futs: list[asyncio.Future[tuple[int, bytes]]]) -> None:
        """Start the deadlines of *futs*, just written."""
        deadline = self.loop.time() + self.timeout
        self.deadlines.extend((deadline, fut) for fut in futs)
        if self.timer is None:
            self.timer = self.loop.call_at(deadline, self._expire)

    @property
    def queued(self) -> bool:
        """Requests wait for the end of this loop turn to be written."""
        return bool(self.outgoing)

    def _readable(self) -> bool:
        if self.fd < 0:
            return False
        try:
            return bool(select.select([self.fd], [], [], 0)[0])
        except (OSError, ValueError):
            return False

    def _write(self) -> None:
        if self.transport is not None and self.outgoing:
            self.transport.write(b"".join(self.outgoing))
            self._watch(self.unsent)
        self.outgoing.clear()
        self.unsent = []

    def _expire(self) -> None:
        """Fail every request past its deadline; re-arm for the next one. A reply that
        has come but is not read yet is read first: uvloop runs timers before it polls,
        and a loop turn of CPU-bound handlers can outlast the deadline (replies come in
        order, so anything to read is the oldest request's)."""
        self.timer = None
        now, deadlines = self.loop.time(), self.deadlines
        if deadlines and deadlines[0][0] <= now and self._readable():
            self.timer = self.loop.call_later(_READ_FIRST, self._expire)
            return
        while deadlines and deadlines[0][0] <= now:
            fut = deadlines.popleft()[1]
            if not fut.done():
                fut.set_exception(TimeoutError())
        if deadlines:
            self.timer = self.loop.call_at(deadlines[0][0], self._expire)


#: The future of one request's raw reply: ``(status, body)``.
Sent = asyncio.Future[tuple[int, bytes]]


class AsyncThrottleClient:
    """The asyncio client (the web tier's): many requests in flight on one connection."""

    def __init__(self, addresses: Sequence[Address], timeout: float = 0.005) -> None:
        if not addresses:
            raise ClientError("no throttle daemon given")
        self.addresses = list(addresses)
        self.timeout = timeout
        self.conns: list[_AsyncConn | None] = [None] * len(self.addresses)
        self.ring = Ring(len(self.addresses))
        self.locks = [asyncio.Lock() for _ in self.addresses]

    async def _conn(self, node: int) -> _AsyncConn:
        conn = self.conns[node]
        if conn is not None and conn.transport is not None:
            return conn
        async with self.locks[node]:  # one connection per daemon, however many ask at once
            conn = self.conns[node]
            if conn is None or conn.transport is None:
                conn = self.conns[node] = await self._connect(self.addresses[node])
        return conn

    async def _connect(self, address: Address) -> _AsyncConn:
        loop = asyncio.get_running_loop()
        timeout = self.timeout

        def factory() -> _AsyncConn:
            return _AsyncConn(timeout)

        try:
            async with asyncio.timeout(self.timeout):
                if isinstance(address, Path):
                    _, conn = await loop.create_unix_connection(factory, str(address))
                else:
                    _, conn = await loop.create_connection(factory, *address)
        except (OSError, TimeoutError) as exc:
            raise ClientError(f"cannot reach the throttle daemon at {address}: {exc}") from None
        return conn

    async def call(
        self, node: int, op: int, keys: list[bytes], costs: list[int] | None = None
    ) -> bytes:
        """One request to daemon *node*; the reply body."""
        conn = self.conns[node]
        if conn is None or conn.transport is None:
            conn = await self._conn(node)
        try:
            status, body = await conn.send(op, p.request_body(op, keys, costs))
        except TimeoutError:
            raise LateReply(f"the throttle daemon at {self.addresses[node]} timed out") from None
        return checked_body(status, body)

    async def check(self, keys: Sequence[bytes], costs: Sequence[int] | None = None) -> Reply:
        """Admit (charging every key) or deny (charging none)."""
        keys, costs = list(keys), costs_of(keys, costs)
        if self.ring.count == 1:
            return decode_decision(await self.call(0, p.CHECK, keys, costs))
        groups = self.ring.split(keys)
        if len(groups) == 1:
            node = next(iter(groups))
            return decode_decision(await self.call(node, p.CHECK, keys, costs))
        asked = await self._each(p.PEEK, keys, costs, groups)
        if not asked.allowed:
            return asked
        return await self._each(p.CHECK, keys, costs, groups)

    def start_check(
        self, keys: Sequence[bytes], costs: Sequence[int] | None = None, body: bytes | None = None
    ) -> tuple[Coroutine[Any, Any, Reply], bool] | None:
        """Ask a CHECK without waiting for the reply (``None``: it needs a connection
        made first, or its keys live on several daemons; call :meth:`check`). Awaiting the
        coroutine gives the reply, or raises as :meth:`check` does; the flag says the
        request was only queued: yield to the loop once to have it written (in one write
        with the others of this loop turn). *body*: the CHECK's
        :func:`~.protocol.request_body` for *keys* and *costs*, if the caller keeps it."""
        started = self.start(keys, costs, body)
        if started is None:
            return None
        node, sent, queued = started
        return self._finish(node, sent), queued

    def start(
        self, keys: Sequence[bytes], costs: Sequence[int] | None = None, body: bytes | None = None
    ) -> tuple[int, Sent, bool] | None:
        """:meth:`start_check` without a coroutine around the reply, for a caller on the
        hot path: the daemon's index, the future of its raw reply (turn it into the
        :class:`Reply` with :meth:`answer`; :class:`TimeoutError` past the deadline, a
        :class:`~.errors.ClientError` if the connection is lost), and the flag."""
        node = 0 if self.ring.count == 1 else self.ring.only_node(keys)
        if node is None:
            return None
        conn = self.conns[node]
        if conn is None or conn.transport is None:
            return None
        if body is None:
            body = p.request_body(p.CHECK, list(keys), costs_of(keys, costs))
        return node, conn.send(p.CHECK, body), conn.queued

    def answer(self, got: tuple[int, bytes]) -> Reply:
        """The decision in a CHECK's raw reply (*got*, from :meth:`start`'s future).

        :raises ThrottleError: the daemon answered with an error.
        """
        return decode_decision(checked_body(*got))

    def late(self, node: int) -> LateReply:
        """What a CHECK to daemon *node* past its deadline raises."""
        return LateReply(f"the throttle daemon at {self.addresses[node]} timed out")

    async def _finish(self, node: int, sent: Sent) -> Reply:
        try:
            got = await sent
        except TimeoutError:
            raise self.late(node) from None
        return self.answer(got)

    async def _each(
        self, op: int, keys: list[bytes], costs: list[int], groups: dict[int, list[int]]
    ) -> Reply:
        bodies = await asyncio.gather(
            *(
                self.call(node, op, [keys[i] for i in idx], [costs[i] for i in idx])
                for node, idx in groups.items()
            )
        )
        return combine(
            (decode_decision(body), idx) for body, idx in zip(bodies, groups.values(), strict=True)
        )

    async def charge(self, keys: Sequence[bytes], costs: Sequence[int]) -> Reply:
        """Charge after the fact (CPU time), whatever the state."""
        keys, costs = list(keys), list(costs)
        return await self._each(p.CHARGE, keys, costs, self.ring.split(keys))

    async def show(self, key: bytes) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(await self.call(self.ring.node(key), p.SHOW, [key]))
        return result

    async def reset(self, key: bytes) -> bool:
        return await self.call(self.ring.node(key), p.RESET, [key]) == b"\x01"

    async def stats(self, node: int = 0) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(await self.call(node, p.STATS, []))
        return result

    async def aclose(self) -> None:
        """Close every connection and wait (briefly) until each is closed."""
        conns = [conn for conn in self.conns if conn is not None]
        self.conns = [None] * len(self.addresses)
        for conn in conns:
            if conn.transport is not None:
                conn.transport.close()
        if conns:
            await asyncio.wait([conn.closed for conn in conns], timeout=1.0)
