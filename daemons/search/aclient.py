"""The asyncio client of ``sleigh-searchd`` (:class:`AsyncSearchClient`): one socket
per endpoint shared by every task, replies matched to requests by id; it fails over
as the blocking client does (see :mod:`.client`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import zmq
import zmq.asyncio

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


class _AsyncLink:
    """One endpoint's socket, shared by tasks; a reader task hands out replies."""

    def __init__(self, zctx: zmq.asyncio.Context, endpoint: str) -> None:
        self.sock = zctx.socket(zmq.DEALER)
        configure(self.sock, endpoint)
        self.monitor = self.sock.get_monitor_socket(EVENTS)
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
            return checked(decode_reply(raw))
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
            await asyncio.sleep(STEP)
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
            event = event_of(await self.monitor.recv_multipart())
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
        self.replicas = Replicas(endpoints, retry_after)
        self.timeout = timeout
        self._ids = Ids()
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
