"""What the throttle middleware adds to an HTTP request's latency (for ``bench_throttle``).

The same requests go, alternately, to an app without and an app with a
middleware, served and asked by one process on loopback; each request is
timed at the client (end to end) and inside the server (outermost
middleware in to out). The latency a middleware adds at a percentile is
that percentile with it minus the same without it.

Two middlewares are measured this way:

* sleigh's (:class:`sleigh.webapp.throttle.Throttle`): the request's keys,
  the denial cache, the question asked before the handler and the answer
  awaited after it (a ``GET``), the CPU time charged, the counters;
* the floor: the least a middleware asking a daemon once per request can
  do, on this machine and at this moment. It writes one pre-built question
  frame for the request's address before the handler runs and awaits the
  answer's first byte after it, on a bare asyncio connection to the same
  daemon: no request keys or route classes, no deadline, no denial cache,
  no CPU charge, no counters, no fallback.

Beside them, :func:`idle_round_trips`: one blocking client's round trips to
a daemon with the client spinning for a gap before each, so that only the
daemon's core idles in between. On a virtual machine an idle core is given
back to the host, and waking it again is what a round trip then waits for:
the middleware's requests, one at a time, leave such gaps.
"""

from __future__ import annotations

import asyncio
import socket as sockets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sleigh.daemons.throttle import protocol as p
from sleigh.daemons.throttle.client import AsyncThrottleClient
from sleigh.daemons.throttle.rules import Rule

#: Requests at the start of each series left out (connection set-up, first round trips).
SKIP = 10
#: The header the apps take the client's address from.
IP_HEADER = "X-Real-IP"
#: Where a handler leaves its own time on the request.
HANDLED = "bench.handled"

#: The page-sized handler's template: 60 products' cards, escaped, about a product page's size.
PAGE = """<!doctype html><html><head><title>${title}</title></head><body><main><h1>${title}</h1>
<ul>
% for item in items:
<li><a href="/p/${item['id']}"><img src="/img/${item['id']}.jpg" alt="${item['title']}">
${item['title']}</a> <span class="brand">${item['brand']}</span> $${item['price']}</li>
% endfor
</ul></main></body></html>"""


@dataclass
class Overhead:
    """Per-request latencies (seconds) of the same requests with and without the middleware:
    at the client, inside the server (outermost middleware in to out), and the handler's
    own (its time excluded from the server's gives each request's middleware time)."""

    without_client: np.ndarray
    with_client: np.ndarray
    without_server: np.ndarray
    with_server: np.ndarray
    without_handler: np.ndarray
    with_handler: np.ndarray

    def own(self, which: str) -> np.ndarray:
        """Each request's time in the middlewares of app *which* (``with``/``without``):
        the server's time less the handler's, request by request."""
        server: np.ndarray = getattr(self, f"{which}_server")
        handler: np.ndarray = getattr(self, f"{which}_handler")
        own: np.ndarray = server - handler
        return own

    def added(self, q: float, where: str = "client") -> float:
        """Microseconds the middleware adds at percentile *q* (with minus without)."""
        with_, without = getattr(self, f"with_{where}"), getattr(self, f"without_{where}")
        return float(np.percentile(with_, q) - np.percentile(without, q)) * 1e6


def render_page() -> Callable[[], str]:
    """Renders :data:`PAGE` with 60 products (the work a shop's GET does)."""
    from mako.template import Template

    template = Template(PAGE, default_filters=["h"])
    items = [
        {"id": i, "title": f"Wooden train <set> no. {i}", "brand": "Brio & Co", "price": "19.99"}
        for i in range(60)
    ]
    return lambda: str(template.render(title="Trains", items=items))


class _Floor(asyncio.Protocol):
    """The floor's connection: one question per request, answers in order."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[asyncio.Future[bool]] = deque()
        self.rid = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        # A decision's reply is a fixed 23 bytes: the prefix (9), then "allowed".
        for pos in range(0, len(data), p.PREFIX.size + p.DECISION.size):
            self.waiting.popleft().set_result(bool(data[pos + p.PREFIX.size]))

    def ask(self, frame: bytes) -> asyncio.Future[bool]:
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.waiting.append(fut)
        assert self.transport is not None
        self.transport.write(frame)
        return fut


def _floor_middleware(conn: _Floor) -> Any:
    from aiohttp import web

    frames: dict[str, bytes] = {}

    @web.middleware
    async def floor(request: web.Request, handler: Any) -> web.StreamResponse:
        ip = request.headers[IP_HEADER]
        frame = frames.get(ip)
        if frame is None:
            frame = frames[ip] = p.encode_request(p.CHECK, 0, [f"ip:{ip}".encode()], [1])
        answer = conn.ask(frame)
        response = await handler(request)
        return response if await answer else web.Response(status=429)

    return floor


def _app(middleware: Any, inside: list[float], handled: list[float], page: bool) -> Any:
    """A one-route app timed from its outermost middleware (*inside*), then *middleware*
    if given; its handler, which times itself (*handled*), answers ``ok``, or renders a
    page (*page*)."""
    from aiohttp import web

    clock = time.perf_counter
    render = render_page()

    @web.middleware
    async def outer(request: web.Request, handler: Any) -> web.StreamResponse:
        request[HANDLED] = 0.0  # (a request refused before its handler ran)
        t0 = clock()
        response: web.StreamResponse = await handler(request)
        inside.append(clock() - t0)
        handled.append(request[HANDLED])
        return response

    async def hello(request: web.Request) -> web.Response:
        t0 = clock()
        response = web.Response(text="ok")
        request[HANDLED] = clock() - t0
        return response

    async def rendered(request: web.Request) -> web.Response:
        t0 = clock()
        response = web.Response(text=render(), content_type="text/html")
        request[HANDLED] = clock() - t0
        return response

    app = web.Application(middlewares=[outer] if middleware is None else [outer, middleware])
    app.router.add_get("/", rendered if page else hello)
    return app


async def _alternate(apps: list[Any], ips: list[str]) -> tuple[list[float], list[float]]:
    """Each address's request to both apps, in turn first; latencies at the client."""
    from aiohttp import ClientSession
    from aiohttp.test_utils import TestServer

    outside: tuple[list[float], list[float]] = ([], [])
    clock = time.perf_counter
    async with (
        TestServer(apps[0]) as plain,
        TestServer(apps[1]) as guarded,
        ClientSession() as session,
    ):
        urls = [str(plain.make_url("/")), str(guarded.make_url("/"))]
        headers = {"Accept": "application/json"}
        for i, ip in enumerate(ips):
            headers[IP_HEADER] = ip
            for which in (0, 1) if i % 2 else (1, 0):
                t0 = clock()
                async with session.get(urls[which], headers=headers) as response:
                    await response.read()
                outside[which].append(clock() - t0)
    return outside


async def _measure(
    socket: Path | None, ips: list[str], page: bool, rules: dict[str, Rule], floor: bool
) -> Overhead:
    from prometheus_client import CollectorRegistry

    from sleigh.daemons.throttle.config import ThrottleConfig
    from sleigh.webapp.throttle import Throttle

    inside: tuple[list[float], list[float]] = ([], [])
    handled: tuple[list[float], list[float]] = ([], [])
    closing: list[Any] = []
    if floor:
        assert socket is not None
        transport, conn = await asyncio.get_running_loop().create_unix_connection(
            _Floor, str(socket)
        )
        closing.append(transport.close)
        guarded = _app(_floor_middleware(conn), inside[1], handled[1], page)
    else:
        cfg = ThrottleConfig(client_ip_header=IP_HEADER, timeout=1.0)
        client = None if socket is None else AsyncThrottleClient([socket], timeout=1.0)
        throttle = Throttle(cfg, rules, client)
        guarded = _app(None, inside[1], handled[1], page)
        throttle.install(guarded, CollectorRegistry())
    try:
        outside = await _alternate([_app(None, inside[0], handled[0], page), guarded], ips)
    finally:
        for close in closing:
            close()
    return Overhead(*(np.array(x[SKIP:]) for x in (*outside, *inside, *handled)))


def middleware_overhead(
    socket: Path | None,
    keys: list[bytes],
    rules: dict[str, Rule],
    page: bool = False,
    floor: bool = False,
) -> Overhead:
    """Per-request latencies without and with sleigh's middleware under *rules* (*socket*
    ``None``: its in-process fallback only), or the floor's (*floor*); *page*: the handler
    renders a page (else it answers ``ok``); *keys*: ``ip:ADDRESS``, one request each."""
    import uvloop

    ips = [key.decode()[3:] for key in keys]
    return uvloop.run(_measure(socket, ips, page, rules, floor))


def print_overhead(name: str, got: Overhead) -> None:
    def pct(values: np.ndarray) -> str:
        p50, p99 = (np.percentile(values, q) * 1e6 for q in (50, 99))
        return f"p50 {p50:7.1f} p99 {p99:7.1f}"

    print(f"{name} ({len(got.with_client):,} requests each, alternating, one run):")
    for where, label in (("client", "end to end, at the client"), ("server", "inside the server")):
        without, with_ = getattr(got, f"without_{where}"), getattr(got, f"with_{where}")
        print(
            f"  {label:26} without {pct(without)} | with {pct(with_)}"
            f" | added p50 {got.added(50, where):6.1f} p99 {got.added(99, where):6.1f} us"
        )
    print(
        f"  {'each request, handler out':26} without {pct(got.own('without'))}"
        f" | with {pct(got.own('with'))} us"
    )


def idle_round_trips(socket: Path, gaps_us: list[int], count: int) -> list[tuple[int, np.ndarray]]:
    """Round-trip times (seconds) of one-key CHECKs to the daemon at *socket*, each after
    *gap* microseconds of this client spinning (its core busy, the daemon's idle)."""
    frame = p.encode_request(p.CHECK, 0, [b"ip:192.0.2.1"], [0])
    clock = time.perf_counter
    out = []
    with sockets.socket(sockets.AF_UNIX) as sock:
        sock.connect(str(socket))
        for gap_us in gaps_us:
            gap, times = gap_us / 1e6, []
            for _ in range(count + SKIP):
                t0 = clock()
                while clock() - t0 < gap:
                    pass
                t0 = clock()
                sock.sendall(frame)
                sock.recv(64)
                times.append(clock() - t0)
            out.append((gap_us, np.array(times[SKIP:])))
    return out


def print_idle_round_trips(name: str, got: list[tuple[int, np.ndarray]]) -> None:
    print(f"{name}:")
    for gap_us, times in got:
        p50, p90, p99 = (np.percentile(times, q) * 1e6 for q in (50, 90, 99))
        print(f"  after {gap_us:5,} us idle  p50 {p50:7.1f} p90 {p90:7.1f} p99 {p99:7.1f} us")


def print_middleware(http: dict[str, Overhead], idle: list[tuple[int, np.ndarray]]) -> None:
    """The middlewares' latencies (*http*, by :func:`middleware_overhead`'s kind) and the
    idle round trips, as ``bench_throttle`` prints them."""
    print()
    size = len(render_page()()) / 1024
    for name, key in (
        ("middleware, asking the daemon, handler answers 'ok'", "ok"),
        (f"middleware, asking the daemon, handler renders a {size:.1f} KB page", "page"),
        ("middleware, in-process fallback (no round trip)", "fallback"),
        ("floor: one write and one read per request, handler answers 'ok'", "floor ok"),
        ("floor: one write and one read per request, handler renders the page", "floor page"),
    ):
        print_overhead(name, http[key])
    print_idle_round_trips(
        "round trips to the minimal server, one blocking client, after its core idled", idle
    )
