"""GETs run while the daemon's answer is on its way; other requests wait for it.

In process (an aiohttp test server with the middleware), against a real
``sleigh-throttled``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from sleigh.daemons.throttle.client import AsyncThrottleClient
from sleigh.daemons.throttle.config import ThrottleConfig
from sleigh.daemons.throttle.rules import load_rules
from sleigh.webapp.throttle import Throttle
from tests.throttle.conftest import Throttled

#: Refusals come as JSON (this app has no templates).
JSON = {"Accept": "application/json"}


@dataclass
class Seen:
    """What the handler saw each time it ran: questions in flight to the daemon."""

    in_flight: list[int] = field(default_factory=list)


Shop = tuple[TestClient[web.Request, web.Application], Seen, AsyncThrottleClient]


@pytest_asyncio.fixture
async def shop(throttled: Throttled) -> AsyncIterator[Shop]:
    cfg = ThrottleConfig(client_ip_header="X-Real-IP", timeout=5.0)
    client = AsyncThrottleClient([throttled.socket_path], timeout=5.0)
    throttle = Throttle(cfg, load_rules(throttled.home / "rules.toml"), client)
    seen = Seen()

    async def page(request: web.Request) -> web.Response:
        conn = client.conns[0]
        seen.in_flight.append(0 if conn is None else len(conn.waiting))
        return web.Response(text="the page")

    async def missing(request: web.Request) -> web.Response:
        seen.in_flight.append(len(client.conns[0].waiting) if client.conns[0] else 0)
        raise web.HTTPNotFound(text="no such thing")

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_post("/", page)
    app.router.add_get("/missing", missing)
    throttle.install(app, CollectorRegistry())
    async with TestClient(TestServer(app)) as http:
        yield http, seen, client


async def get(http: TestClient[web.Request, web.Application], ip: str, path: str = "/") -> int:
    async with http.get(path, headers={"X-Real-IP": ip, **JSON}) as response:
        await response.read()
        return response.status


@pytest.mark.asyncio
async def test_a_get_runs_while_its_question_is_in_flight(shop: Shop) -> None:
    http, seen, _ = shop
    assert await get(http, "10.2.0.1") == 200  # the first makes the connection, then asks
    assert seen.in_flight == [0]
    assert await get(http, "10.2.0.1") == 200
    assert seen.in_flight[1] == 1  # the handler ran before the answer came


@pytest.mark.asyncio
async def test_a_denied_get_is_refused_though_its_handler_ran(shop: Shop) -> None:
    http, seen, _ = shop
    statuses = [await get(http, "10.2.0.2") for _ in range(6)]
    assert statuses == [200] * 5 + [429]  # ip: 5 a minute
    assert len(seen.in_flight) == 6  # the sixth ran, and its page was replaced
    assert await get(http, "10.2.0.2") == 429  # now from the worker's own cache of denials
    assert len(seen.in_flight) == 6


@pytest.mark.asyncio
async def test_a_denied_get_that_raised_is_refused_too(shop: Shop) -> None:
    http, seen, _ = shop
    statuses = [await get(http, "10.2.0.3", "/missing") for _ in range(6)]
    assert statuses == [404] * 5 + [429]
    assert len(seen.in_flight) == 6


@pytest.mark.asyncio
async def test_a_post_waits_for_the_answer(shop: Shop) -> None:
    http, seen, _ = shop
    assert await get(http, "10.2.0.4") == 200  # connected
    statuses = []
    for _ in range(5):
        async with http.post("/", headers={"X-Real-IP": "10.2.0.4", **JSON}) as response:
            statuses.append(response.status)
    assert statuses == [200] * 4 + [429]
    assert seen.in_flight[1:] == [0] * 4  # answered before each ran; the refused never ran
