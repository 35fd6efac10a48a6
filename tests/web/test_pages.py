"""The first web tier, served over real HTTP from a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
import os
import re

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from sleigh.webapp.db import schema
from sleigh.webapp.middleware import _ids

Client = TestClient[web.Request, web.Application]


async def _first_product(engine: AsyncEngine) -> sa.Row[int, str, int]:
    p = schema.products.c
    async with engine.connect() as conn:
        query = sa.select(p.id, p.title, p.price_cents).order_by(p.popularity.desc(), p.id)
        return (await conn.execute(query.limit(1))).one()


async def test_home_lists_sections_and_popular_products(
    client: Client, demo_engine: AsyncEngine
) -> None:
    response = await client.get("/")
    assert response.status == 200
    body = await response.text()
    for section in ("Toys", "Books", "Video Games"):
        assert section in body
    top = await _first_product(demo_engine)
    assert f"/p/{top.id}/" in body
    assert response.headers["Cache-Control"].startswith("public, max-age=")
    assert "Expires" in response.headers
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-Id"])


async def test_category_page_lists_subtree_products_sorted(
    client: Client, demo_engine: AsyncEngine
) -> None:
    c = schema.categories.c
    async with demo_engine.connect() as conn:
        root = (await conn.execute(sa.select(c.id, c.path).where(c.parent_id.is_(None)))).first()
    assert root is not None
    response = await client.get(f"/c/{root.path}", params={"sort": "price"})
    assert response.status == 200
    body = await response.text()
    prices = [
        float(p.replace(",", "")) for p in re.findall(r'class="price">\$([\d,]+\.\d\d)', body)
    ]
    assert len(prices) == 10
    assert prices == sorted(prices)
    match = re.search(r"([\d,]+) products &middot; page 1 of (\d+)", body)
    assert match is not None
    total = int(match.group(1).replace(",", ""))
    async with demo_engine.connect() as conn:
        subtree = sa.select(c.id).where(sa.or_(c.path == root.path, c.path.like(root.path + "/%")))
        expected = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(schema.products)
                .where(schema.products.c.category_id.in_(subtree))
            )
        ).scalar_one()
    assert total == expected > 10
    assert 'rel="next"' in body


async def test_category_sorts_descending_price_and_pages(client: Client) -> None:
    first = await (await client.get("/c/toys", params={"sort": "-price"})).text()
    second = await (await client.get("/c/toys", params={"sort": "-price", "page": "2"})).text()
    price = re.compile(r'class="price">\$([\d,]+\.\d\d)')
    one = [float(p.replace(",", "")) for p in price.findall(first)]
    two = [float(p.replace(",", "")) for p in price.findall(second)]
    assert one == sorted(one, reverse=True)
    assert min(one) >= max(two)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/c/toys?sort=cheapest", 400),
        ("/c/toys?page=0", 400),
        ("/c/toys?page=abc", 400),
        ("/c/toys?page=9999", 400),
        ("/c/toys?page=400", 404),
        ("/c/no-such-section", 404),
        ("/p/999999999", 404),
        ("/nowhere", 404),
    ],
)
async def test_bad_requests_get_friendly_pages(client: Client, path: str, status: int) -> None:
    response = await client.get(path)
    assert response.status == status
    body = await response.text()
    assert "<h1>" in body and "Back to the home page" in body
    assert response.headers["Cache-Control"] == "private, no-store"


async def test_product_page_shows_price_stock_and_related(
    client: Client, demo_engine: AsyncEngine
) -> None:
    top = await _first_product(demo_engine)
    response = await client.get(f"/p/{top.id}")
    assert response.status == 200
    body = await response.text()
    assert f"${top.price_cents // 100:,}.{top.price_cents % 100:02d}" in body
    assert re.search(r"(In stock|Only \d+ left|Out of stock)", body)
    assert 'aria-label="Breadcrumb"' in body
    assert 'alt="Picture of ' in body


async def test_stock_label_follows_inventory(client: Client, demo_engine: AsyncEngine) -> None:
    top = await _first_product(demo_engine)
    inv = schema.inventory.c
    async with demo_engine.begin() as conn:
        await conn.execute(
            sa.update(schema.inventory)
            .where(inv.product_id == top.id)
            .values(on_hand=3, reserved=0)
        )
    assert "Only 3 left" in await (await client.get(f"/p/{top.id}")).text()
    async with demo_engine.begin() as conn:
        await conn.execute(
            sa.update(schema.inventory)
            .where(inv.product_id == top.id)
            .values(on_hand=2, reserved=2)
        )
    assert "Out of stock" in await (await client.get(f"/p/{top.id}")).text()


async def test_templates_escape_product_text(client: Client, demo_engine: AsyncEngine) -> None:
    top = await _first_product(demo_engine)
    async with demo_engine.begin() as conn:
        await conn.execute(
            sa.update(schema.products)
            .where(schema.products.c.id == top.id)
            .values(title="<script>alert(1)</script>", description='Tom & Jerry\'s "best"')
        )
    body = await (await client.get(f"/p/{top.id}")).text()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "Tom &amp; Jerry" in body


async def test_crash_is_logged_with_request_id_and_shown_kindly(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="sleigh.web"):
        response = await client.get("/boom", headers={"X-Request-Id": "req-42"})
    assert response.status == 500
    body = await response.text()
    assert "Something went wrong" in body and "req-42" in body
    assert "the handler failed on purpose" not in body
    assert response.headers["X-Request-Id"] == "req-42"
    [record] = [r for r in caplog.records if "req-42" in r.getMessage()]
    assert record.exc_info is not None


async def test_request_id_from_client_is_sanitised(client: Client) -> None:
    response = await client.get("/healthz", headers={"X-Request-Id": "bad id <script>"})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-Id"])


async def test_request_ids_made_here_differ(client: Client) -> None:
    ids = [(await client.get("/healthz")).headers["X-Request-Id"] for _ in range(5)]
    assert len(set(ids)) == 5 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def test_a_forked_worker_makes_request_ids_of_its_own() -> None:
    mine = _ids.next()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one id, then out at once
        os.write(write, _ids.next().encode())
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert status == 0 and re.fullmatch(r"[0-9a-f]{32}", child)
    assert child[:16] != mine[:16]


async def test_healthz_reports_database(client: Client) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert (await response.json())["database"] == "ok"
    assert response.headers["Cache-Control"] == "no-store"


async def test_placeholder_images_and_static_files(client: Client) -> None:
    image = await client.get("/img/toy-07.svg")
    assert image.status == 200
    assert image.content_type == "image/svg+xml"
    assert (await image.text()).startswith("<svg")
    assert (await client.get("/img/..%2Fetc.svg")).status == 404
    css = await client.get("/static/style.css")
    assert css.status == 200
    assert css.headers["Cache-Control"] == "public, max-age=3600"
