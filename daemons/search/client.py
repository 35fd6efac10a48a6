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

import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import zmq

from .aclient import AsyncSearchClient  # re-exported: one import gives both clients
from .errors import BadRequest, Busy, RequestError, SearchUnavailable
from .protocol import decode_reply, encode
from .replicas import (
    EVENTS,
    Attempt,
    Change,
    Ids,
    Replicas,
    SearchResult,
    applied,
    checked,
    configure,
    event_of,
    result_of,
    search_request,
)

__all__ = [
    "AsyncSearchClient",
    "BadRequest",
    "RequestError",
    "SearchClient",
    "SearchResult",
    "SearchUnavailable",
    "search_request",
]


def _readable(sock: zmq.Socket[bytes]) -> bool:
    events = sock.get(zmq.EVENTS)
    return isinstance(events, int) and bool(events & zmq.POLLIN)


class _Link:
    """One endpoint's socket in one thread, and what its monitor says of the connection.

    ``up`` is None until a first connection is made or refused, then follows the
    monitor: a request to an endpoint known to be down fails over at once; one
    whose connection drops while it waits for the reply fails over at once too
    (its message may have been lost with the connection).
    """

    def __init__(self, zctx: zmq.Context[zmq.Socket[bytes]], endpoint: str) -> None:
        self.sock = zctx.socket(zmq.DEALER)
        configure(self.sock, endpoint)
        self.monitor = self.sock.get_monitor_socket(EVENTS)
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
            event = event_of(self.monitor.recv_multipart())
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
        self.replicas = Replicas(endpoints, retry_after)
        self.timeout = timeout
        self._ids = Ids()
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
        return checked(decode_reply(link.wait(rid, self.timeout)))

    def request(self, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """Send *body* to one replica, failing over; the reply and who answered.

        :raises BadRequest: if the daemon refused the request.
        :raises SearchUnavailable: if no replica answered.
        """
        raw = encode(body)
        attempt = Attempt(self.replicas)
        for endpoint in attempt:
            try:
                reply = self._ask(endpoint, raw)
            except Busy as exc:
                attempt.failed(endpoint, exc)
                continue
            self.replicas.answered(endpoint)
            return reply, endpoint
        raise attempt.error()

    def search(self, q: str = "", **conditions: Any) -> SearchResult:
        """Search; *conditions* as :func:`search_request` takes them."""
        reply, endpoint = self.request(search_request(q, **conditions))
        return result_of(reply, endpoint)

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
        return applied(out)

    def close(self) -> None:
        """Close every socket; call when no thread uses the client any more."""
        with self._lock:
            self._closed = True
            links, self._links = self._links, []
        for link in links:
            link.close()
        self._zctx.term()
