"""Proxy caching: a public page lives as long as its freshest part allows.

The TTLs are collected as the models load (no controller sets them), pages
share one window (Last-Modified at its start, expiry at its end) and a
conditional GET inside the window gets 304.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path

import pytest
import pytest_asyncio
import sqlalchemy as sa
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from sqlalchemy.ext.asyncio import AsyncEngine

from sleigh.webapp.app import create_app
from sleigh.webapp.config import WebConfig
from sleigh.webapp.db import schema
from sleigh.webapp.models.freshness import collecting, note
from sleigh.webapp.views import Views

Client = TestClient[web.Request, web.Application]


async def serve(engine: AsyncEngine, config: WebConfig) -> AsyncIterator[Client]:
    async with TestClient(TestServer(create_app(config, engine))) as client:
        yield client


@pytest_asyncio.fixture
async def shop(demo_engine: AsyncEngine) -> AsyncIterator[Client]:
    async for client in serve(demo_engine, WebConfig(stock_ttl=120, price_ttl=60, listing_ttl=90)):
        yield client


def max_age(response: ClientResponse) -> int:
    headers = response.headers
    match = re.fullmatch(r"public, max-age=(\d+)", headers["Cache-Control"])
    assert match is not None, headers["Cache-Control"]
    return int(match.group(1))


async def first_id(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.min(schema.products.c.id)))).scalar_one())


async def test_each_page_lives_as_long_as_its_freshest_part(
    shop: Client, demo_engine: AsyncEngine
) -> None:
    product = await first_id(demo_engine)
    page = await shop.get(f"/p/{product}")
    assert 1 <= max_age(page) <= 60  # the price part: 60 s
    home = await shop.get("/")
    assert 1 <= max_age(home) <= 60  # cards show prices too
    for response in (page, home):
        start = parsedate_to_datetime(response.headers["Last-Modified"]).timestamp()
        assert start % 60 == 0
        assert "Expires" in response.headers


async def test_a_shorter_stock_ttl_shortens_the_product_page(demo_engine: AsyncEngine) -> None:
    product = await first_id(demo_engine)
    async for shop in serve(demo_engine, WebConfig(stock_ttl=5)):
        assert 1 <= max_age(await shop.get(f"/p/{product}")) <= 5


async def test_a_conditional_get_inside_the_window_is_not_modified(
    shop: Client, demo_engine: AsyncEngine
) -> None:
    product = await first_id(demo_engine)
    page = await shop.get(f"/p/{product}")
    since = page.headers["Last-Modified"]
    again = await shop.get(f"/p/{product}", headers={"If-Modified-Since": since})
    assert again.status == 304
    assert await again.read() == b""
    assert again.headers["Last-Modified"] == since
    older = formatdate(parsedate_to_datetime(since).timestamp() - 1, usegmt=True)
    for value in (older, "garbage", ""):
        full = await shop.get(f"/p/{product}", headers={"If-Modified-Since": value})
        assert full.status == 200


@pytest.mark.parametrize(
    ("ttls", "now", "window"),
    [
        ([10.0, 600.0], 1005.5, (1000.0, 1010.0)),
        ([], 1005.5, (900.0, 1200.0)),  # no data: page_max_age
        ([0.5], 1005.5, None),  # under a second: not worth caching
    ],
)
def test_windows(ttls: list[float], now: float, window: tuple[float, float] | None) -> None:
    views = Views(page_max_age=300, clock=lambda: now)
    with collecting():
        for ttl in ttls:
            note(ttl)
        assert views.window() == window


def test_a_page_rendered_across_the_end_of_its_window_stays_public(tmp_path: Path) -> None:
    (tmp_path / "page.mako").write_text("a page")
    times = iter([1009.99, 1010.05])  # the window is chosen; rendering takes 60 ms
    views = Views([tmp_path], page_max_age=300, clock=lambda: next(times))
    with collecting():
        note(10.0)
        response = views.render(make_mocked_request("GET", "/"), "page.mako", public=True)
    assert response.headers["Cache-Control"] == "public, max-age=1"
    assert response.headers["Last-Modified"] == formatdate(1000.0, usegmt=True)


async def test_a_section_overrides_templates_of_its_own(
    shop: Client, demo_engine: AsyncEngine
) -> None:
    prod = schema.products.c
    async with demo_engine.connect() as conn:
        query = sa.select(sa.func.min(prod.id)).where(prod.sku.like("BK%"))
        book = (await conn.execute(query)).scalar_one()
    toy = await first_id(demo_engine)
    book_page = await (await shop.get(f"/p/{book}")).text()
    assert "Publisher" in book_page and 'class="section-books"' in book_page
    assert "stories to read together" in book_page
    toy_page = await (await shop.get(f"/p/{toy}")).text()
    assert "Publisher" not in toy_page and "Brand" in toy_page
    assert "Publisher" not in await (await shop.get("/")).text()
