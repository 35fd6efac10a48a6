"""The asyncio client of ``sleigh-searchd`` (:class:`AsyncSearchClient`): one socket
per endpoint shared by every task, replies matched to requests by id; it fails over
as the blocking client does (see :mod:`.client`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import zmq

from .errors import Busy, SearchUnavailable
from .protocol import decode_reply, encode
from .replicas import (
    EVENTS,
    STEP,
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

__all__ = ["AsyncSearchClient"]


def _time_out(future: asyncio.Future[bytes], wait: float) -> None:
    if not future.done():
        future.set_exception(Busy(f"no reply within {wait:g}s", "unavailable"))


class _AsyncLink:
    """One endpoint's socket, shared by tasks; the event loop watches it and hands out
    replies as they come.

    A plain ZeroMQ socket, not ``zmq.asyncio``'s: that one made a future and several
    callbacks for every send and receive, and asked for the running loop each time
    (on Python 3.11 a ``getpid()`` system call each). Here sends are made at once
    (non-blocking), and the loop calls :meth:`_drain` when the socket's file
    descriptor says its events may have changed. ZeroMQ signals that descriptor on
    an edge, which a send may also consume, so every send is followed by a drain.
    """

    def __init__(self, zctx: zmq.Context[zmq.Socket[bytes]], endpoint: str) -> None:
        self.sock = zctx.socket(zmq.DEALER)
        configure(self.sock, endpoint)
        self.monitor = self.sock.get_monitor_socket(EVENTS)
        self.up: bool | None = None
        self.pending: dict[bytes, asyncio.Future[bytes]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def _watched(self) -> asyncio.AbstractEventLoop:
        """The loop that watches both sockets (asked for once)."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
            loop.add_reader(self.sock.FD, self._drain)
            loop.add_reader(self.monitor.FD, self._watch)
            loop.call_soon(self._watch)  # (events queued before the descriptor was watched)
        return loop

    async def ask(self, rid: bytes, body: bytes, wait: float) -> dict[str, Any]:
        """One round trip; raises Busy when the endpoint cannot answer within *wait* s."""
        loop = self._watched()
        future: asyncio.Future[bytes] = loop.create_future()
        self.pending[rid] = future
        timer = loop.call_later(wait, _time_out, future, wait)  # (wait_for costs more)
        try:
            await self._send([rid, body], wait)
            return checked(decode_reply(await future))
        finally:
            timer.cancel()
            self.pending.pop(rid, None)
            if future.done() and not future.cancelled():
                future.exception()  # (marked as seen: the send may have failed first)

    async def _send(self, frames: list[bytes], wait: float) -> None:
        """Send *frames*, waiting up to *wait* s for a connection being made."""
        deadline = time.monotonic() + wait
        while self.up is not False:
            try:
                self.sock.send_multipart(frames, flags=zmq.NOBLOCK)
            except zmq.Again:
                if time.monotonic() >= deadline:
                    raise Busy(f"not connected within {wait:g}s", "unavailable") from None
            else:
                self._drain()
                return
            await asyncio.sleep(STEP)
        raise Busy("not connected (refused or dropped; retrying)", "unavailable")

    def _drain(self) -> None:
        """Hand out every reply the socket holds."""
        while True:
            try:
                frames = self.sock.recv_multipart(flags=zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) != 2:
                continue
            future = self.pending.get(frames[0])
            if future is not None and not future.done():
                future.set_result(frames[1])

    def _watch(self) -> None:
        """Follow the connection; fail the requests in flight when it drops (they fail over)."""
        while True:
            try:
                event = event_of(self.monitor.recv_multipart(flags=zmq.NOBLOCK))
            except zmq.Again:
                return
            self.up = event == zmq.EVENT_CONNECTED
            if event != zmq.EVENT_DISCONNECTED:
                continue
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(Busy("the connection dropped", "unavailable"))

    def close(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self.sock.FD)
            self._loop.remove_reader(self.monitor.FD)
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
        self.replicas = Replicas(endpoints, retry_after)
        self.timeout = timeout
        self._ids = Ids()
        self._zctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
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
        attempt = Attempt(self.replicas)
        for endpoint in attempt:
            try:
                reply = await self._link(endpoint).ask(self._ids(), raw, self.timeout)
            except Busy as exc:
                attempt.failed(endpoint, exc)
                continue
            self.replicas.answered(endpoint)
            return reply, endpoint
        raise attempt.error()

    async def search(self, q: str = "", **conditions: Any) -> SearchResult:
        reply, endpoint = await self.request(search_request(q, **conditions))
        return result_of(reply, endpoint)

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
        return applied(out)

    async def aclose(self) -> None:
        """Close every socket."""
        self._closed = True
        for link in self._links.values():
            link.close()
        self._links.clear()
        self._zctx.term()
