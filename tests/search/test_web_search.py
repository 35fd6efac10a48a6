"""The storefront's search page and completions, end to end: demo catalog → index →
``sleigh-searchd`` → client → HTTP; and the 503 page when no daemon answers."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from sleigh.core_ext import tokenize
from sleigh.core_ext.search import Index, ProductDoc, Query, load_products, open_index
from sleigh.daemons.search.client import AsyncSearchClient
from sleigh.webapp.app import create_app
from sleigh.webapp.config import WebConfig
from sleigh.webapp.db import schema
from tests.plugins.searchd import StartSearchd, build_version
from tests.web.test_cart import add
from tests.web.test_checkout import place, review

Client = TestClient[web.Request, web.Application]
PRICE = re.compile(r'class="price">\$([\d,]+\.\d\d)')
PRODUCT = re.compile(r'href="/p/(\d+)/')


@dataclass
class Shop:
    http: Client
    index: Index
    docs: list[ProductDoc]


@pytest_asyncio.fixture
async def shop(
    demo_engine: AsyncEngine, tmp_path: Path, searchd_factory: StartSearchd
) -> AsyncIterator[Shop]:
    docs = await load_products(demo_engine)
    home = tmp_path / "shop"
    path = build_version(home / "search", 1, docs)
    daemon = searchd_factory(home=home)
    search = AsyncSearchClient([daemon.endpoint], timeout=10)
    app = create_app(WebConfig(page_size=10), demo_engine, search_client=search)
    try:
        async with TestClient(TestServer(app)) as http:
            yield Shop(http, open_index(path), docs)
    finally:
        await search.aclose()


def _word(shop: Shop, min_total: int) -> str:
    """A title word that matches more than *min_total* products."""
    for doc in sorted(shop.docs, key=lambda d: -d.popularity):
        for word in tokenize(doc.title):
            if len(word) > 3 and shop.index.search(Query(text=word)).total > min_total:
                return word
    raise AssertionError("no common word in the demo titles")


def _total(body: str) -> int:
    match = re.search(r"([\d,]+) products &middot; page (\d+) of (\d+)", body)
    assert match is not None, body
    return int(match.group(1).replace(",", ""))


async def test_results_facets_sorting_and_pages(shop: Shop) -> None:
    word = _word(shop, 10)
    expected = shop.index.search(Query(text=word, limit=10))
    response = await shop.http.get("/search", params={"q": word})
    assert response.status == 200
    assert response.headers["Cache-Control"].startswith("public, max-age=")
    body = await response.text()
    assert _total(body) == expected.total
    assert [int(i) for i in PRODUCT.findall(body)] == expected.ids
    assert f'value="{word}"' in body  # the header's search box keeps the words
    assert 'rel="next"' in body

    brand = re.search(
        r'<a href="(/search\?q=[^"]*brand=(\d+))">([^<]+)</a> '
        r'<span class="count">\((\d+)\)',
        body,
    )
    assert brand is not None
    narrowed = await (await shop.http.get(html.unescape(brand.group(1)))).text()
    assert _total(narrowed) == int(brand.group(4))
    assert 'aria-current="true">' + brand.group(3) in narrowed
    names = re.findall(r'class="brand">([^<]+)<', narrowed)
    assert names and set(names) == {brand.group(3)}

    cheap = await (await shop.http.get("/search", params={"q": word, "sort": "price_asc"})).text()
    prices = [float(p.replace(",", "")) for p in PRICE.findall(cheap)]
    assert prices == sorted(prices) and len(prices) == 10
    second = await shop.http.get("/search", params={"q": word, "sort": "price_asc", "page": "2"})
    assert second.status == 200
    more = [float(p.replace(",", "")) for p in PRICE.findall(await second.text())]
    assert min(more) >= max(prices)
    assert (await shop.http.get("/search", params={"q": word, "page": "400"})).status == 404


async def test_price_band_and_stock_filters_narrow(shop: Shop) -> None:
    response = await shop.http.get("/search", params={"price": "10-25", "in_stock": "1"})
    body = await response.text()
    expected = shop.index.search(Query(price_min=1000, price_max=2499, in_stock=True))
    assert _total(body) == expected.total > 0
    prices = [float(p.replace(",", "")) for p in PRICE.findall(body)]
    assert all(10 <= p < 25 for p in prices)
    assert "Out of stock" not in body


async def test_no_results_help(shop: Shop) -> None:
    word = _word(shop, 0)
    typo = word[:-2] + word[-1] + word[-2]
    body = await (await shop.http.get("/search", params={"q": typo})).text()
    if shop.index.search(Query(text=typo)).suggestion:
        assert "Did you mean" in body
    nothing = await (await shop.http.get("/search", params={"q": "qqqzzzxxx"})).text()
    assert "Nothing matched" in nothing
    assert "Popular right now" in nothing
    assert len(PRODUCT.findall(nothing)) == 8
    spelled = await (await shop.http.get("/search", params={"q": word + "x"})).text()
    assert f'Did you mean <a href="/search?q={word}">{word}</a>' in spelled


async def test_suggest_answers_json_completions(shop: Shop) -> None:
    word = _word(shop, 0)
    response = await shop.http.get("/search/suggest", params={"q": word[:3]})
    assert response.status == 200
    assert response.headers["Cache-Control"].startswith("public, max-age=")
    reply = await response.json()
    assert reply["q"] == word[:3]
    assert reply["completions"] and all(c.startswith(word[:3]) for c in reply["completions"])
    empty = await (await shop.http.get("/search/suggest", params={"q": " "})).json()
    assert empty["completions"] == []


async def test_bad_parameters_and_escaping(shop: Shop) -> None:
    for params in ({"sort": "cheapest"}, {"page": "0"}, {"price": "1-2"}, {"brand": "x"}):
        assert (await shop.http.get("/search", params={"q": "car", **params})).status == 400
    body = await (await shop.http.get("/search", params={"q": "<script>alert(1)</script>"})).text()
    assert "<script>alert" not in body
    assert "&lt;script&gt;" in body
    start = await shop.http.get("/search")
    assert start.status == 200
    assert "Search the shop" in await start.text()


@pytest.mark.parametrize("client", ["none", "dead"])
async def test_search_unavailable_is_a_friendly_503(
    demo_engine: AsyncEngine, tmp_path: Path, client: str
) -> None:
    search = None
    if client == "dead":
        search = AsyncSearchClient([f"ipc://{tmp_path}/nobody.sock"], timeout=0.2)
    app = create_app(WebConfig(page_size=10), demo_engine, search_client=search)
    try:
        async with TestClient(TestServer(app)) as http:
            response = await http.get("/search", params={"q": "car"})
            assert response.status == 503
            assert response.headers["Retry-After"]
            assert response.headers["Cache-Control"] == "private, no-store"
            assert "Search is unavailable" in await response.text()
            suggest = await http.get("/search/suggest", params={"q": "ca"})
            assert suggest.status == 503
            assert (await suggest.json())["completions"] == []
            home = await http.get("/")
            assert home.status == 200
            assert 'action="/search"' in await home.text()
    finally:
        if search is not None:
            await search.aclose()


async def test_a_sell_out_reaches_search_results_without_a_rebuild(
    demo_engine: AsyncEngine, tmp_path: Path, searchd_factory: StartSearchd
) -> None:
    docs = await load_products(demo_engine)
    home = tmp_path / "shop"
    build_version(home / "search", 1, docs)
    daemon = searchd_factory(home=home)
    search = AsyncSearchClient([daemon.endpoint], timeout=10)
    product = next(d for d in sorted(docs, key=lambda d: d.id) if d.in_stock)
    inv = schema.inventory
    async with demo_engine.begin() as conn:  # one left
        await conn.execute(
            inv.update().where(inv.c.product_id == product.id).values(on_hand=inv.c.reserved + 1)
        )
    app = create_app(WebConfig(), demo_engine, search_client=search)
    try:
        async with TestClient(TestServer(app)) as http:

            async def listed() -> bool:
                found = await search.search(product.title, in_stock=True, limit=200)
                return product.id in found.ids

            assert await listed()
            await add(http, product.id)
            await place(http, await review(http))
            assert not await listed()
    finally:
        await search.aclose()
