"""The clients of ``sleigh-searchd``: blocking (:class:`SearchClient`) and asyncio
(:class:`AsyncSearchClient`), for the web tier, ``sleigh`` and tests.

Connections
    One ZeroMQ DEALER socket per endpoint, opened on first use and kept open
    for the life of the client (as Apache::DBI kept database handles); the
    blocking client keeps one per endpoint *per thread* (ZeroMQ sockets are not
    thread-safe), the asyncio client one per endpoint, shared by every task,
    with replies matched to requests by request id. ZeroMQ reconnects by
    itself when a daemon restarts. Make one client per process and share it.

Replicas
    Requests go to the endpoints in turn (round robin, from a random start).
    An endpoint that cannot take the request (its connection was refused or
    dropped, as a socket monitor tells, or is not made within ``timeout``),
    does not answer within ``timeout``, loses its connection while the request
    waits, or answers ``unavailable`` (stopping, no index) is skipped for
    ``retry_after`` seconds and the request goes to the next one;
    when every endpoint has been tried, :class:`SearchUnavailable` is raised.
    A request the daemon refuses (a bad request) raises :class:`BadRequest` at
    once: another replica would refuse it too. Price and stock updates go to
    every endpoint (:meth:`SearchClient.update`).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from .errors import BadRequest, Busy, RequestError, SearchUnavailable, error_for
from .protocol import decode_reply, encode

__all__ = [
    "AsyncSearchClient",
    "BadRequest",
    "RequestError",
    "SearchClient",
    "SearchResult",
    "SearchUnavailable",
    "search_request",
]

Change = tuple[int, int | None, bool | None]


@dataclass(frozen=True)
class SearchResult:
    """One page of results: product ids in order, the exact total, facets, a suggestion."""

    ids: list[int]
    total: int
    facets: dict[str, dict[Any, int]] | None
    suggestion: str | None
    took_us: int
    version: int | None
    endpoint: str


def search_request(
    q: str = "",
    *,
    prefix: bool = False,
    category: int | None = None,
    brands: Sequence[int] = (),
    price: tuple[int | None, int | None] | None = None,
    age: int | None = None,
    age_to: int | None = None,
    in_stock: bool | None = None,
    sort: str = "relevance",
    offset: int = 0,
    limit: int = 20,
    facets: Sequence[str] = (),
) -> dict[str, Any]:
    """The request map of a search (see :mod:`~sleigh.daemons.search.protocol`)."""
    body: dict[str, Any] = {"op": "search", "q": q, "sort": sort, "offset": offset}
    body["limit"] = limit
    if prefix:
        body["prefix"] = True
    if category is not None:
        body["category"] = category
    if brands:
        body["brands"] = list(brands)
    if price is not None:
        body["price"] = list(price)
    if age is not None:
        body["age"] = age
    if age_to is not None:
        body["age_to"] = age_to
    if in_stock is not None:
        body["in_stock"] = in_stock
    if facets:
        body["facets"] = list(facets)
    return body


def _result(reply: dict[str, Any], endpoint: str) -> SearchResult:
    return SearchResult(
        ids=list(reply["ids"]),
        total=int(reply["total"]),
        facets=reply.get("facets"),
        suggestion=reply.get("suggestion"),
        took_us=int(reply.get("took_us", 0)),
        version=reply.get("version"),
        endpoint=endpoint,
    )


class _Replicas:
    """Which endpoint to try next: round robin, skipping those that failed lately."""

    def __init__(self, endpoints: Sequence[str], retry_after: float) -> None:
        if not endpoints:
            raise ValueError("a search client needs at least one endpoint")
        for endpoint in endpoints:
            if not endpoint.startswith(("ipc://", "tcp://", "inproc://")):
                raise ValueError(f"{endpoint!r}: endpoints are ipc:///path or tcp://host:port")
        self.endpoints = list(endpoints)
        self.retry_after = retry_after
        self._turn = itertools.count(random.randrange(len(endpoints)))
        self._down: dict[str, float] = {}

    def order(self) -> list[str]:
        """Every endpoint, the next in turn first, those down lately last."""
        start = next(self._turn) % len(self.endpoints)
        turn = self.endpoints[start:] + self.endpoints[:start]
        now = time.monotonic()
        up = [e for e in turn if self._down.get(e, 0.0) <= now]
        return up + [e for e in turn if e not in up]

    def failed(self, endpoint: str) -> None:
        self._down[endpoint] = time.monotonic() + self.retry_after

    def answered(self, endpoint: str) -> None:
        self._down.pop(endpoint, None)


def _unavailable(tried: list[str], last: str) -> SearchUnavailable:
    return SearchUnavailable(
        f"no search daemon answered (tried {', '.join(tried)}; last: {last});"
        " check `sleigh status` and [search] endpoints"
    )


def _checked(reply: dict[str, Any]) -> dict[str, Any]:
    if reply.get("ok") is True:
        return reply
    raise error_for(str(reply.get("error", "internal")), str(reply.get("message", "")))


class _Ids:
    """Request ids: 8 bytes, unique within the process."""

    def __init__(self) -> None:
        self._next = itertools.count(1)

    def __call__(self) -> bytes:
        return next(self._next).to_bytes(8, "big")


def _readable(sock: zmq.Socket[bytes]) -> bool:
    events = sock.get(zmq.EVENTS)
    return isinstance(events, int) and bool(events & zmq.POLLIN)


def _configure(sock: zmq.Socket[Any], endpoint: str) -> None:
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IMMEDIATE, 1)  # queue only to a live connection
    sock.setsockopt(zmq.RECONNECT_IVL, 100)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
    sock.connect(endpoint)


#: The monitor's events: a connection made, dropped, or refused (retried later).
_EVENTS = zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_CONNECT_RETRIED
#: Seconds between looks at a connection being made (asyncio client).
_STEP = 0.02


def _event(frames: list[bytes]) -> int:
    return int(parse_monitor_message(frames)["event"])


class _Link:
    """One endpoint's socket in one thread, and what its monitor says of the connection.

    ``up`` is None until a first connection is made or refused, then follows the
    monitor: a request to an endpoint known to be down fails over at once; one
    whose connection drops while it waits for the reply fails over at once too
    (its message may have been lost with the connection).
    """

    def __init__(self, zctx: zmq.Context[zmq.Socket[bytes]], endpoint: str) -> None:
        self.sock = zctx.socket(zmq.DEALER)
        _configure(self.sock, endpoint)
        self.monitor = self.sock.get_monitor_socket(_EVENTS)
        self.up: bool | None = None
        self.replies = zmq.Poller()
        self.replies.register(self.sock, zmq.POLLIN)
        self.replies.register(self.monitor, zmq.POLLIN)
        self.writable = zmq.Poller()
        self.writable.register(self.sock, zmq.POLLOUT)
        self.writable.register(self.monitor, zmq.POLLIN)

    def pump(self) -> bool:
        """Read the queued connection events; whether a connection dropped among them."""
        dropped = False
        while _readable(self.monitor):
            event = _event(self.monitor.recv_multipart())
            self.up = event == zmq.EVENT_CONNECTED
            dropped = dropped or event == zmq.EVENT_DISCONNECTED
        return dropped

    def send(self, frames: list[bytes], seconds: float) -> None:
        """Send *frames*, waiting up to *seconds* for a connection being made."""
        self.pump()
        deadline = time.monotonic() + seconds
        while self.up is not False:
            try:
                self.sock.send_multipart(frames, zmq.NOBLOCK)
                return
            except zmq.Again:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Busy(f"not connected within {seconds:g}s", "unavailable") from None
            if self.monitor in dict(self.writable.poll(max(1, int(left * 1000)))):
                self.pump()
        raise Busy("not connected (refused or dropped; retrying)", "unavailable")

    def wait(self, rid: bytes, seconds: float) -> bytes:
        """The reply to *rid*; raises Busy on a timeout or a dropped connection."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            events = dict(self.replies.poll(max(1, int(left * 1000))))
            if self.sock in events:
                frames = self.sock.recv_multipart()
                if len(frames) == 2 and frames[0] == rid:
                    return frames[1]
            elif self.monitor in events and self.pump():
                raise Busy("the connection dropped", "unavailable")
        raise Busy(f"no reply within {seconds:g}s", "unavailable")

    def close(self) -> None:
        self.sock.disable_monitor()
        self.monitor.close(linger=0)
        self.sock.close(linger=0)


class SearchClient:
    """Blocking client; safe to share between threads.

    :param endpoints: ZeroMQ endpoints of the replicas.
    :param timeout: seconds to wait for one replica's reply.
    :param retry_after: seconds a replica that failed is tried last.
    """

    def __init__(
        self, endpoints: Sequence[str], *, timeout: float = 1.0, retry_after: float = 1.0
    ) -> None:
        self.replicas = _Replicas(endpoints, retry_after)
        self.timeout = timeout
        self._ids = _Ids()
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._zctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._local = threading.local()
        self._links: list[_Link] = []
        self._closed = False

    def __enter__(self) -> SearchClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _link(self, endpoint: str) -> _Link:
        if self._closed:
            raise SearchUnavailable("this search client is closed")
        if os.getpid() != self._pid:
            raise SearchUnavailable("a search client cannot be used across fork(); make another")
        mine: dict[str, _Link] | None = getattr(self._local, "links", None)
        if mine is None:
            mine = self._local.links = {}
        link = mine.get(endpoint)
        if link is None:
            link = mine[endpoint] = _Link(self._zctx, endpoint)
            with self._lock:
                self._links.append(link)
        return link

    def _ask(self, endpoint: str, body: bytes) -> dict[str, Any]:
        """One round trip to *endpoint*; raises Busy when it cannot answer."""
        link = self._link(endpoint)
        rid = self._ids()
        link.send([rid, body], self.timeout)
        return _checked(decode_reply(link.wait(rid, self.timeout)))

    def request(self, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """Send *body* to one replica, failing over; the reply and who answered.

        :raises BadRequest: if the daemon refused the request.
        :raises SearchUnavailable: if no replica answered.
        """
        raw = encode(body)
        tried: list[str] = []
        last = ""
        for endpoint in self.replicas.order():
            tried.append(endpoint)
            try:
                reply = self._ask(endpoint, raw)
            except Busy as exc:
                self.replicas.failed(endpoint)
                last = f"{endpoint}: {exc}"
                continue
            self.replicas.answered(endpoint)
            return reply, endpoint
        raise _unavailable(tried, last)

    def search(self, q: str = "", **conditions: Any) -> SearchResult:
        """Search; *conditions* as :func:`search_request` takes them."""
        reply, endpoint = self.request(search_request(q, **conditions))
        return _result(reply, endpoint)

    def suggest(self, q: str, limit: int = 8) -> list[str]:
        """Completions of the last word of *q*."""
        reply, _ = self.request({"op": "suggest", "q": q, "limit": limit})
        return list(reply["completions"])

    def stats(self) -> dict[str, Any]:
        """The counters of the replica that answers."""
        reply, endpoint = self.request({"op": "stats"})
        return {**reply, "endpoint": endpoint}

    def ping(self) -> int | None:
        """The index version of the replica that answers."""
        reply, _ = self.request({"op": "ping"})
        return reply.get("version")

    def update(self, changes: Sequence[Change]) -> dict[str, int | str]:
        """Send price/stock *changes* to every replica.

        :returns: per endpoint, the number of products changed, or the error text.
        :raises SearchUnavailable: if no replica took them.
        """
        raw = encode({"op": "update", "changes": [list(c) for c in changes]})
        out: dict[str, int | str] = {}
        for endpoint in self.replicas.endpoints:
            try:
                out[endpoint] = int(self._ask(endpoint, raw)["applied"])
            except Busy as exc:
                out[endpoint] = str(exc)
        if all(isinstance(v, str) for v in out.values()):
            raise _unavailable(list(out), "; ".join(f"{k}: {v}" for k, v in out.items()))
        return out

    def close(self) -> None:
        """Close every socket; call when no thread uses the client any more."""
        with self._lock:
            self._closed = True
            links, self._links = self._links, []
        for link in links:
            link.close()
        self._zctx.term()


class _AsyncLink:
    """One endpoint's socket, shared by tasks; a reader task hands out replies."""

    def __init__(self, zctx: zmq.asyncio.Context, endpoint: str) -> None:
        self.sock = zctx.socket(zmq.DEALER)
        _configure(self.sock, endpoint)
        self.monitor = self.sock.get_monitor_socket(_EVENTS)
        self.up: bool | None = None
        self.pending: dict[bytes, asyncio.Future[bytes]] = {}
        self.reader: asyncio.Task[None] | None = None
        self.watcher: asyncio.Task[None] | None = None

    async def ask(self, rid: bytes, body: bytes, wait: float) -> dict[str, Any]:
        """One round trip; raises Busy when the endpoint cannot answer within *wait* s."""
        if self.reader is None or self.reader.done():
            self.reader = asyncio.create_task(self._read())
        if self.watcher is None or self.watcher.done():
            self.watcher = asyncio.create_task(self._watch())
        await self._send([rid, body], wait)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.pending[rid] = future
        try:
            try:
                raw = await asyncio.wait_for(future, wait)
            except TimeoutError:
                raise Busy(f"no reply within {wait:g}s", "unavailable") from None
            return _checked(decode_reply(raw))
        finally:
            self.pending.pop(rid, None)

    async def _send(self, frames: list[bytes], wait: float) -> None:
        """Send *frames*, waiting up to *wait* s for a connection being made."""
        deadline = time.monotonic() + wait
        while self.up is not False:
            try:
                await self.sock.send_multipart(frames, flags=zmq.NOBLOCK)
                return
            except zmq.Again:
                if time.monotonic() >= deadline:
                    raise Busy(f"not connected within {wait:g}s", "unavailable") from None
            await asyncio.sleep(_STEP)
        raise Busy("not connected (refused or dropped; retrying)", "unavailable")

    async def _read(self) -> None:
        while True:
            frames = await self.sock.recv_multipart()
            if len(frames) != 2:
                continue
            future = self.pending.get(frames[0])
            if future is not None and not future.done():
                future.set_result(frames[1])

    async def _watch(self) -> None:
        """Follow the connection; fail the requests in flight when it drops (they fail over)."""
        while True:
            event = _event(await self.monitor.recv_multipart())
            self.up = event == zmq.EVENT_CONNECTED
            if event != zmq.EVENT_DISCONNECTED:
                continue
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(Busy("the connection dropped", "unavailable"))

    def close(self) -> None:
        for task in (self.reader, self.watcher):
            if task is not None:
                task.cancel()
        self.sock.disable_monitor()
        self.monitor.close(linger=0)
        self.sock.close(linger=0)


class AsyncSearchClient:
    """asyncio client: the same API as :class:`SearchClient`, as coroutines.

    Use it from one event loop (the web worker's).
    """

    def __init__(
        self, endpoints: Sequence[str], *, timeout: float = 1.0, retry_after: float = 1.0
    ) -> None:
        self.replicas = _Replicas(endpoints, retry_after)
        self.timeout = timeout
        self._ids = _Ids()
        self._zctx = zmq.asyncio.Context()
        self._links: dict[str, _AsyncLink] = {}
        self._closed = False

    def _link(self, endpoint: str) -> _AsyncLink:
        if self._closed:
            raise SearchUnavailable("this search client is closed")
        link = self._links.get(endpoint)
        if link is None:
            link = self._links[endpoint] = _AsyncLink(self._zctx, endpoint)
        return link

    async def request(self, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """As :meth:`SearchClient.request`."""
        raw = encode(body)
        tried: list[str] = []
        last = ""
        for endpoint in self.replicas.order():
            tried.append(endpoint)
            try:
                reply = await self._link(endpoint).ask(self._ids(), raw, self.timeout)
            except Busy as exc:
                self.replicas.failed(endpoint)
                last = f"{endpoint}: {exc}"
                continue
            self.replicas.answered(endpoint)
            return reply, endpoint
        raise _unavailable(tried, last)

    async def search(self, q: str = "", **conditions: Any) -> SearchResult:
        reply, endpoint = await self.request(search_request(q, **conditions))
        return _result(reply, endpoint)

    async def suggest(self, q: str, limit: int = 8) -> list[str]:
        reply, _ = await self.request({"op": "suggest", "q": q, "limit": limit})
        return list(reply["completions"])

    async def stats(self) -> dict[str, Any]:
        reply, endpoint = await self.request({"op": "stats"})
        return {**reply, "endpoint": endpoint}

    async def update(self, changes: Sequence[Change]) -> dict[str, int | str]:
        """As :meth:`SearchClient.update`."""
        raw = encode({"op": "update", "changes": [list(c) for c in changes]})
        out: dict[str, int | str] = {}
        for endpoint in self.replicas.endpoints:
            try:
                reply = await self._link(endpoint).ask(self._ids(), raw, self.timeout)
                out[endpoint] = int(reply["applied"])
            except Busy as exc:
                out[endpoint] = str(exc)
        if all(isinstance(v, str) for v in out.values()):
            raise _unavailable(list(out), "; ".join(f"{k}: {v}" for k, v in out.items()))
        return out

    async def aclose(self) -> None:
        """Close every socket."""
        self._closed = True
        for link in self._links.values():
            link.close()
        self._links.clear()
        self._zctx.term()
