"""``/metrics``: requests and latency per route, object-cache hits and misses, the DB pool.

Read back through the Prometheus text parser after real requests, on SQLite
and PostgreSQL, with and without a real ``sleigh-cached``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy.ext.asyncio import AsyncEngine

from sleigh.daemons.cache.client import AsyncCacheClient
from sleigh.webapp.app import create_app
from sleigh.webapp.config import WebConfig
from tests.plugins.cache import CacheDaemon
from tests.web.test_cart import in_stock

Client = TestClient[web.Request, web.Application]


@pytest_asyncio.fixture
async def cache(cached: CacheDaemon) -> AsyncIterator[AsyncCacheClient]:
    async with AsyncCacheClient(cached.socket_path, None, direct=False) as client:
        yield client


async def scrape(client: Client) -> list[Sample]:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    text = await response.text()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The one sample *name* with exactly *labels*; 0 if there is none."""
    found = [s.value for s in samples if s.name == name and s.labels == labels]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else 0.0


async def test_requests_and_latency_per_route(client: Client, demo_engine: AsyncEngine) -> None:
    (product,) = await in_stock(demo_engine)
    assert (await client.get(f"/p/{product}")).status == 200
    assert (await client.get("/c/toys")).status == 200
    assert (await client.get("/c/toys?page=2")).status == 200
    assert (await client.get("/no/such/page")).status == 404
    assert (await client.post(f"/p/{product}")).status == 405
    assert (await client.get("/boom")).status == 500
    samples = await scrape(client)

    count = "sleigh_web_request_duration_seconds_count"
    assert value(samples, count, route="product") == 1
    assert value(samples, count, route="category") == 2
    assert value(samples, count, route="unmatched") == 2  # the 404 and the 405
    buckets = [
        s
        for s in samples
        if s.name == "sleigh_web_request_duration_seconds_bucket"
        and s.labels["route"] == "category"
    ]
    assert [b.labels["le"] for b in buckets][-1] == "+Inf"
    assert [b.value for b in buckets] == sorted(b.value for b in buckets)  # cumulative
    assert buckets[-1].value == 2
    assert value(samples, "sleigh_web_request_duration_seconds_sum", route="category") > 0

    requests = "sleigh_web_requests_total"
    assert value(samples, requests, route="product", method="GET", status="2xx") == 1
    assert value(samples, requests, route="category", method="GET", status="2xx") == 2
    assert value(samples, requests, route="unmatched", method="GET", status="4xx") == 1
    assert value(samples, requests, route="unmatched", method="POST", status="4xx") == 1
    assert value(samples, requests, route="/boom", method="GET", status="5xx") == 1  # no name
    routes = {s.labels["route"] for s in samples if s.name == requests}
    assert routes == {"product", "category", "unmatched", "/boom"}  # never a raw path


async def test_an_unusual_method_is_counted_as_other(client: Client) -> None:
    for method in ("PROPFIND", "MKCOL", "GET"):
        await client.request(method, "/cart")
    samples = await scrape(client)
    requests = "sleigh_web_requests_total"
    assert value(samples, requests, route="unmatched", method="other", status="4xx") == 2  # 405
    assert value(samples, requests, route="cart", method="GET", status="2xx") == 1
    assert {s.labels["method"] for s in samples if s.name == requests} == {"GET", "other"}


async def test_the_pool_gauges_are_read_when_scraped(
    client: Client, demo_engine: AsyncEngine
) -> None:
    samples = await scrape(client)
    size = value(samples, "sleigh_web_db_pool_size")
    assert size >= 1
    assert value(samples, "sleigh_web_db_pool_overflow") >= 0
    idle = value(samples, "sleigh_web_db_pool_checked_in")
    assert value(samples, "sleigh_web_db_pool_checked_out") == 0
    async with demo_engine.connect(), demo_engine.connect():
        held = await scrape(client)
        assert value(held, "sleigh_web_db_pool_checked_out") == 2
    again = await scrape(client)
    assert value(again, "sleigh_web_db_pool_checked_out") == 0
    assert value(again, "sleigh_web_db_pool_checked_in") >= max(idle, 2)


async def test_the_read_connections_are_shown_on_postgresql(
    client: Client, demo_engine: AsyncEngine
) -> None:
    assert (await client.get("/p/1")).status == 200
    samples = await scrape(client)
    names = {s.name for s in samples}
    shown = {
        "sleigh_web_db_read_connections",
        "sleigh_web_db_read_waits_total",
        "sleigh_web_db_read_timeouts_total",
        "sleigh_web_db_read_retries_total",
    }
    if demo_engine.dialect.name == "sqlite":  # (one connection of its own: nothing to show)
        assert not names & shown
        return
    assert shown <= names
    assert 1 <= value(samples, "sleigh_web_db_read_connections") <= 4
    assert value(samples, "sleigh_web_db_read_timeouts_total") == 0
    assert value(samples, "sleigh_web_db_read_retries_total") == 0


async def test_the_throttle_counters_stay_out_until_a_throttle_is_installed(
    client: Client,
) -> None:
    names = {s.name for s in await scrape(client)}
    assert "sleigh_web_pid" in names
    assert not any(name.startswith("sleigh_throttle_") for name in names)


async def test_a_first_read_misses_the_object_cache_and_a_second_hits(
    demo_engine: AsyncEngine, cache: AsyncCacheClient
) -> None:
    (product,) = await in_stock(demo_engine)
    app = create_app(WebConfig(), demo_engine, cache=cache)
    async with TestClient(TestServer(app)) as client:
        hits, misses = "sleigh_web_object_cache_hits_total", "sleigh_web_object_cache_misses_total"
        before = await scrape(client)
        assert value(before, hits, kind="desc") == value(before, misses, kind="desc") == 0

        assert (await client.get(f"/p/{product}")).status == 200
        first = await scrape(client)
        assert value(first, misses, kind="desc") == 1  # only the product page reads it
        assert value(first, hits, kind="desc") == 0
        assert value(first, misses, kind="info") >= 1  # "info2:" keys: the version is left out
        assert value(first, misses, kind="cat") == 1  # the tree, read once, then held
        assert value(first, misses, kind="rel") == 1  # "rel:ID:LIMIT": one key per product

        assert (await client.get(f"/p/{product}")).status == 200
        second = await scrape(client)
        assert value(second, misses, kind="desc") == 1
        assert value(second, hits, kind="desc") == 1
        assert value(second, hits, kind="rel") == 1
        assert value(second, hits, kind="info") > value(first, hits, kind="info")
        assert value(second, misses, kind="info") == value(first, misses, kind="info")
        assert value(second, "sleigh_web_object_cache_errors_total") == 0
