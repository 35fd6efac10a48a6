"""Category pages through ``sleigh-searchd``: facet counts against the database,
narrowing by each facet, sorts, pages, bad parameters, and the database listing
when no daemon answers (SQLite and PostgreSQL)."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_asyncio
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from sleigh.core_ext.search import AGE_BANDS, PRICE_BANDS
from sleigh.daemons.search.client import AsyncSearchClient
from sleigh.webapp.app import create_app
from sleigh.webapp.config import WebConfig
from sleigh.webapp.db import schema

Client = TestClient[web.Request, web.Application]
SIZE = 10
PRICE = re.compile(r'class="price">\$([\d,]+\.\d\d)')
PRODUCT = re.compile(r'href="/p/(\d+)/')
FACET = re.compile(
    r'<h2 id="facet-(\w+)">[^<]*</h2>\s*<ul aria-labelledby="facet-\1">(.*?)</ul>', re.S
)
VALUE = re.compile(
    r'<a href="([^"]+)"( aria-current="true")?>([^<]+)</a> <span class="count">\(([\d,]+)\)'
)


@dataclass(frozen=True)
class Row:
    id: int
    brand_id: int
    price_cents: int
    age_min: int
    age_max: int
    available: int
    popularity: int


@dataclass(frozen=True)
class Value:
    url: str
    selected: bool
    label: str
    count: int


@pytest_asyncio.fixture
async def shop(demo_engine: AsyncEngine, demo_search: AsyncSearchClient) -> AsyncIterator[Client]:
    app = create_app(WebConfig(page_size=SIZE), demo_engine, search_client=demo_search)
    async with TestClient(TestServer(app)) as http:
        yield http


async def rows(engine: AsyncEngine, path: str) -> list[Row]:
    """Every product under the category at *path*, as the database has it."""
    c, p, i = schema.categories.c, schema.products.c, schema.inventory.c
    subtree = sa.select(c.id).where(sa.or_(c.path == path, c.path.like(path + "/%")))
    query = (
        sa.select(
            p.id,
            p.brand_id,
            p.price_cents,
            p.age_min,
            p.age_max,
            sa.func.coalesce(i.on_hand - i.reserved, 0),
            p.popularity,
        )
        .select_from(schema.products.outerjoin(schema.inventory))
        .where(p.category_id.in_(subtree))
    )
    async with engine.connect() as conn:
        return [Row(*r) for r in await conn.execute(query)]


def total(body: str) -> int:
    match = re.search(r"([\d,]+) products &middot; page (\d+) of (\d+)", body)
    assert match is not None, body
    return int(match.group(1).replace(",", ""))


def facets(body: str) -> dict[str, list[Value]]:
    return {
        name: [
            Value(html.unescape(u), bool(s), html.unescape(label), int(n.replace(",", "")))
            for u, s, label, n in VALUE.findall(block)
        ]
        for name, block in FACET.findall(body)
    }


def param(url: str, name: str) -> list[str]:
    return parse_qs(urlsplit(url).query).get(name, [])


def in_band(row: Row, low: int, high: int) -> bool:
    return row.age_min <= high and row.age_max >= low


async def get(http: Client, url: str, **params: Any) -> str:
    response = await http.get(url, params=params)
    assert response.status == 200, (url, params, await response.text())
    assert response.headers["Cache-Control"].startswith("public, max-age=")
    assert "Set-Cookie" not in response.headers
    return await response.text()


async def check_counts(body: str, products: list[Row], engine: AsyncEngine) -> None:
    """The facet counts of *body*, a page listing *products* under ``toys``, are theirs."""
    assert total(body) == len(products) > SIZE
    found = facets(body)
    assert set(found) >= {"category", "brand", "price", "age", "in_stock"}
    brands = {int(param(v.url, "brand")[0]): v.count for v in found["brand"]}
    assert brands and all(n == sum(r.brand_id == b for r in products) for b, n in brands.items())
    prices = {param(v.url, "price")[0]: v.count for v in found["price"]}
    assert prices == {
        label: n
        for label, low, high in PRICE_BANDS
        if (n := sum(low <= r.price_cents < high for r in products))
    }
    ages = {param(v.url, "age")[0]: v.count for v in found["age"]}
    assert ages == {
        label: n
        for label, low, high in AGE_BANDS
        if (n := sum(in_band(r, low, high) for r in products))
    }
    assert [v.count for v in found["in_stock"]] == [sum(r.available > 0 for r in products)]
    sections = {v.url.split("?")[0]: v.count for v in found["category"]}
    c = schema.categories.c
    async with engine.connect() as conn:
        children = (await conn.execute(sa.select(c.path).where(c.path.like("toys/%")))).scalars()
    expected = {f"/c/{path}": len(await rows(engine, path)) for path in children}
    assert sections == {path: n for path, n in expected.items() if n and path.count("/") == 3}


async def test_facet_counts_are_the_databases(shop: Client, demo_engine: AsyncEngine) -> None:
    await check_counts(await get(shop, "/c/toys"), await rows(demo_engine, "toys"), demo_engine)


async def test_each_facet_narrows_and_can_be_removed(
    shop: Client, demo_engine: AsyncEngine
) -> None:
    products = {r.id: r for r in await rows(demo_engine, "toys")}
    found = facets(await get(shop, "/c/toys"))
    checks: dict[str, Callable[[Row, Value], bool]] = {
        "brand": lambda r, v: r.brand_id == int(param(v.url, "brand")[0]),
        "price": lambda r, v: next(
            low <= r.price_cents < high
            for b, low, high in PRICE_BANDS
            if b == param(v.url, "price")[0]
        ),
        "age": lambda r, v: next(
            in_band(r, low, high) for b, low, high in AGE_BANDS if b == param(v.url, "age")[0]
        ),
        "in_stock": lambda r, v: r.available > 0,
    }
    for kind, check in checks.items():
        value = found[kind][-1]
        narrowed = await get(shop, value.url)
        assert total(narrowed) == value.count == sum(check(r, value) for r in products.values())
        ids = [int(i) for i in PRODUCT.findall(narrowed)]
        assert ids and all(check(products[i], value) for i in ids), kind
        chosen = facets(narrowed)[kind]
        assert [v.label for v in chosen if v.selected] == [value.label]
        removed = re.search(r'<a href="([^"]+)"><span class="visually-hidden">Remove', narrowed)
        assert removed is not None
        assert total(await get(shop, html.unescape(removed.group(1)))) == len(products)
    first, second = found["brand"][0], found["brand"][1]
    one = facets(await get(shop, first.url))["brand"]
    other = next(v for v in one if v.label == second.label and not v.selected)
    assert other.count == second.count  # brands: counted as if the brand filter were off
    assert param(other.url, "brand") == param(first.url, "brand") + param(second.url, "brand")
    assert total(await get(shop, other.url)) == first.count + second.count
    both = found["brand"][0].url + "&in_stock=1"
    expected = sum(
        r.available > 0 and r.brand_id == int(param(both, "brand")[0]) for r in products.values()
    )
    assert total(await get(shop, both)) == expected


async def test_sorts_and_pages(shop: Client, demo_engine: AsyncEngine) -> None:
    products = {r.id: r for r in await rows(demo_engine, "toys")}
    first = await get(shop, "/c/toys")
    top = sorted(products.values(), key=lambda r: (-r.popularity, r.id))[:SIZE]
    assert [int(i) for i in PRODUCT.findall(first)] == [r.id for r in top]
    for sort, reverse in (("price_asc", False), ("price_desc", True)):
        one = await get(shop, "/c/toys", sort=sort)
        two = await get(shop, "/c/toys", sort=sort, page="2")
        prices = [float(p.replace(",", "")) for p in PRICE.findall(one)]
        more = [float(p.replace(",", "")) for p in PRICE.findall(two)]
        assert prices == sorted(prices, reverse=reverse) and len(prices) == SIZE
        assert (min(more) >= max(prices)) if not reverse else (max(more) <= min(prices))
        assert f'<option value="{sort}" selected>' in one
        assert f"sort={sort}&amp;page=2" in one  # the next page keeps the sort
    newest = [int(i) for i in PRODUCT.findall(await get(shop, "/c/toys", sort="newest"))]
    p = schema.products.c
    async with demo_engine.connect() as conn:
        created = dict((await conn.execute(sa.select(p.id, p.created_at))).all())
    assert [created[i] for i in newest] == sorted((created[i] for i in newest), reverse=True)
    pages = -(-len(products) // SIZE)
    last = await get(shop, "/c/toys", page=str(pages))
    assert len(PRODUCT.findall(last)) == len(products) - SIZE * (pages - 1)
    assert 'rel="next"' not in last and 'rel="prev"' in last
    assert (await shop.get("/c/toys", params={"page": str(pages + 1)})).status == 404


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"sort": "cheapest"}, "sort must be one of"),
        ({"sort": "relevance"}, "sort must be one of"),
        ({"page": "0"}, "page must be a whole number"),
        ({"page": "two"}, "page must be a whole number"),
        ({"price": "1-2"}, "price must be one of"),
        ({"brand": "lego"}, "brand must be"),
        ({"age": "old"}, "age must be one of"),
        ({"age": "9" * 5000}, "age must be one of"),
        ({"page": "9" * 5000}, "page must be a whole number"),
    ],
)
async def test_bad_parameters_are_400_with_a_reason(
    shop: Client, params: dict[str, str], says: str
) -> None:
    response = await shop.get("/c/toys", params=params)
    assert response.status == 400
    assert says in await response.text()
    assert response.headers["Cache-Control"] == "private, no-store"


@pytest.mark.parametrize("client", ["none", "dead"])
async def test_without_searchd_the_database_lists_the_page(
    demo_engine: AsyncEngine, tmp_path: Path, client: str, caplog: pytest.LogCaptureFixture
) -> None:
    search = None
    if client == "dead":
        search = AsyncSearchClient([f"ipc://{tmp_path}/nobody.sock"], timeout=0.2)
    app = create_app(WebConfig(page_size=SIZE), demo_engine, search_client=search)
    products = await rows(demo_engine, "toys")
    brand = products[0].brand_id
    try:
        async with TestClient(TestServer(app)) as http:
            with caplog.at_level(logging.WARNING, logger="sleigh.web.catalog"):
                body = await get(http, "/c/toys", sort="price_desc")
            assert "listed from the database" in caplog.text
            assert total(body) == len(products)
            prices = [float(p.replace(",", "")) for p in PRICE.findall(body)]
            assert prices == sorted(prices, reverse=True) and len(prices) == SIZE
            await check_counts(await get(http, "/c/toys"), products, demo_engine)
            narrowed = await get(http, "/c/toys", brand=str(brand), in_stock="1", page="1")
            expected = [r for r in products if r.brand_id == brand and r.available > 0]
            assert total(narrowed) == len(expected)
            assert "Remove the brand filter" in narrowed
            counted = facets(narrowed)
            assert [v.count for v in counted["in_stock"]] == [len(expected)]
            assert sum(v.count for v in counted["category"]) == len(expected)
            others = {
                int(param(v.url, "brand")[-1]): v.count for v in counted["brand"] if not v.selected
            }
            assert others and all(
                n == sum(r.brand_id == b and r.available > 0 for r in products)
                for b, n in others.items()
            )
            ages = await get(http, "/c/toys", age="3-5")
            assert total(ages) == sum(in_band(r, 3, 5) for r in products)
            assert (await http.get("/c/toys", params={"page": "two"})).status == 400
    finally:
        if search is not None:
            await search.aclose()


async def test_search_page_has_age_and_stock_facets(shop: Client) -> None:
    body = await get(shop, "/search", price="10-25")
    found = facets(body)
    assert found["age"] and found["in_stock"]
    age = found["age"][0]
    assert param(age.url, "price") == ["10-25"]
    assert total(await get(shop, age.url)) == age.count
    stock = found["in_stock"][0]
    narrowed = await get(shop, stock.url)
    assert total(narrowed) == stock.count
    assert "Out of stock" not in narrowed
