"""What both search clients share: the request and result of a search, the replicas
taken in turn, the checks of a reply, request ids and the sockets' settings (see
:mod:`.client` for how requests fail over)."""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import zmq
from zmq.utils.monitor import parse_monitor_message

from .errors import SearchUnavailable, error_for

__all__ = [
    "EVENTS",
    "STEP",
    "Change",
    "Ids",
    "Replicas",
    "SearchResult",
    "checked",
    "configure",
    "event_of",
    "result_of",
    "search_request",
    "unavailable",
]

#: A price and stock change: (product id, price in cents or None, in stock or None).
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


def result_of(reply: dict[str, Any], endpoint: str) -> SearchResult:
    """The result a search *reply* from *endpoint* carries."""
    return SearchResult(
        ids=list(reply["ids"]),
        total=int(reply["total"]),
        facets=reply.get("facets"),
        suggestion=reply.get("suggestion"),
        took_us=int(reply.get("took_us", 0)),
        version=reply.get("version"),
        endpoint=endpoint,
    )


class Replicas:
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


class Attempt:
    """One request's tour of the replicas, best first: iterating gives the endpoints to
    try in turn; it keeps which were tried and the last failure, for :meth:`error`."""

    def __init__(self, replicas: Replicas) -> None:
        self.replicas = replicas
        self.tried: list[str] = []
        self.last = ""

    def __iter__(self) -> Iterator[str]:
        for endpoint in self.replicas.order():
            self.tried.append(endpoint)
            yield endpoint

    def failed(self, endpoint: str, exc: Exception) -> None:
        self.replicas.failed(endpoint)
        self.last = f"{endpoint}: {exc}"

    def error(self) -> SearchUnavailable:
        """The error to raise when every replica was tried and none answered."""
        return unavailable(self.tried, self.last)


def applied(out: dict[str, int | str]) -> dict[str, int | str]:
    """An update's outcome per endpoint (products changed, or the error's text).

    :raises SearchUnavailable: if no replica took the changes.
    """
    if all(isinstance(v, str) for v in out.values()):
        raise unavailable(list(out), "; ".join(f"{k}: {v}" for k, v in out.items()))
    return out


def unavailable(tried: list[str], last: str) -> SearchUnavailable:
    """The error when no endpoint of *tried* answered (*last*: the last failure)."""
    return SearchUnavailable(
        f"no search daemon answered (tried {', '.join(tried)}; last: {last});"
        " check `sleigh status` and [search] endpoints"
    )


def checked(reply: dict[str, Any]) -> dict[str, Any]:
    """*reply* if the daemon answered ``ok``; else the error it names, raised."""
    if reply.get("ok") is True:
        return reply
    raise error_for(str(reply.get("error", "internal")), str(reply.get("message", "")))


class Ids:
    """Request ids: 8 bytes, unique within the process."""

    def __init__(self) -> None:
        self._next = itertools.count(1)

    def __call__(self) -> bytes:
        return next(self._next).to_bytes(8, "big")


def configure(sock: zmq.Socket[Any], endpoint: str) -> None:
    """Set a client socket's options and connect it to *endpoint*."""
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IMMEDIATE, 1)  # queue only to a live connection
    sock.setsockopt(zmq.RECONNECT_IVL, 100)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
    sock.connect(endpoint)


#: The monitor's events: a connection made, dropped, or refused (retried later).
EVENTS = zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_CONNECT_RETRIED
#: Seconds between looks at a connection being made (asyncio client).
STEP = 0.02


def event_of(frames: list[bytes]) -> int:
    """The event a socket monitor's message reports."""
    return int(parse_monitor_message(frames)["event"])
