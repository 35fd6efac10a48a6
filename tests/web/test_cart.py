"""Sessions and the cart over real HTTP, on SQLite and PostgreSQL.

The cart lives in the database: it survives the loss of the cache and of
the app server that wrote it; forms that change it are checked (CSRF token,
or same origin for the product page's button); bad input changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from sleigh.daemons.cache.client import AsyncCacheClient, CacheClient
from sleigh.webapp.app import create_app
from sleigh.webapp.config import WebConfig
from sleigh.webapp.db import schema
from sleigh.webapp.models.cart import Cart, Carts
from sleigh.webapp.models.catalog import Catalog
from sleigh.webapp.security.keys import Keys
from sleigh.webapp.security.sessions import COOKIE
from tests.plugins.cache import CacheDaemon
from tests.web.shopper import Shopper

Client = TestClient[web.Request, web.Application]
KEYS = Keys([b"k" * 32])


@pytest_asyncio.fixture
async def shop(demo_engine: AsyncEngine) -> AsyncIterator[Client]:
    app = create_app(WebConfig(page_size=10), demo_engine, keys=KEYS)
    async with TestClient(TestServer(app)) as client:
        yield client


def origin(client: Shopper) -> dict[str, str]:
    return {"Origin": f"http://{client.host}:{client.port}"}


async def in_stock(engine: AsyncEngine, count: int = 1) -> list[int]:
    inv = schema.inventory.c
    query = sa.select(inv.product_id).where(inv.on_hand - inv.reserved > 5)
    async with engine.connect() as conn:
        rows = (await conn.execute(query.order_by(inv.product_id).limit(count))).scalars()
        return list(rows)


async def add(client: Shopper, product: int, quantity: int = 1) -> str:
    """Add to the cart as the product page's form does; the Set-Cookie sent, if any."""
    response = await client.post(
        "/cart/add",
        data={"product": str(product), "quantity": str(quantity)},
        headers=origin(client),
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    assert response.headers["Location"] == "/cart"
    return response.headers.get("Set-Cookie", "")


async def cart_lines(client: Shopper) -> dict[int, int]:
    response = await client.get("/cart")
    assert response.status == 200
    assert response.headers["Cache-Control"] == "private, no-store"
    body = await response.text()
    found = re.findall(
        r'name="product" value="(\d+)">.*?name="quantity"[^>]*value="(\d+)"', body, re.S
    )
    return {int(p): int(q) for p, q in found}


def csrf_of(body: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', body)
    assert match is not None
    return match.group(1)


async def test_catalog_pages_set_no_cookie_and_carry_security_headers(
    shop: Client, demo_engine: AsyncEngine
) -> None:
    (product,) = await in_stock(demo_engine)
    for path in ("/", f"/p/{product}"):
        response = await shop.get(path)
        assert response.status == 200
        assert "Set-Cookie" not in response.headers
        assert response.headers["Cache-Control"].startswith("public")
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    body = await (await shop.get(f"/p/{product}")).text()
    assert 'action="/cart/add"' in body


async def test_add_change_and_remove(shop: Client, demo_engine: AsyncEngine) -> None:
    first, second = await in_stock(demo_engine, 2)
    cookie = await add(shop, first)
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    await add(shop, first, 2)
    await add(shop, second)
    assert await cart_lines(shop) == {first: 3, second: 1}
    token = csrf_of(await (await shop.get("/cart")).text())
    changed = await shop.post(
        "/cart/update",
        data={"csrf": token, "product": str(first), "quantity": "5"},
        allow_redirects=False,
    )
    assert changed.status == 303
    removed = await shop.post(
        "/cart/update",
        data={"csrf": token, "product": str(second), "quantity": "1", "remove": "1"},
        allow_redirects=False,
    )
    assert removed.status == 303
    assert await cart_lines(shop) == {first: 5}
    fragment = await shop.get("/fragment/header")
    assert "(5)" in await fragment.text()
    assert fragment.headers["Cache-Control"] == "private, no-store"


async def test_forms_from_elsewhere_or_without_a_token_change_nothing(
    shop: Client, demo_engine: AsyncEngine
) -> None:
    (product,) = await in_stock(demo_engine)
    for headers in ({}, {"Origin": "https://evil.example"}, {"Referer": "http://evil/x"}):
        response = await shop.post("/cart/add", data={"product": str(product)}, headers=headers)
        assert response.status == 403
        assert "another site" in await response.text()
    assert "Set-Cookie" not in response.headers
    await add(shop, product)
    for token in ("", "forged", csrf_of(await (await shop.get("/cart")).text())[:-2] + "AA"):
        response = await shop.post(
            "/cart/update", data={"csrf": token, "product": str(product), "quantity": "9"}
        )
        assert response.status == 403
        assert "expired" in await response.text()
    assert await cart_lines(shop) == {product: 1}


@pytest.mark.parametrize(
    ("product", "quantity", "status"),
    [
        ("abc", "1", 400),
        ("0", "1", 400),
        ("1", "0", 400),
        ("1", "100", 400),
        ("1", "-1", 400),
        ("1" * 30, "1", 400),
        ("999999", "1", 404),
    ],
)
async def test_bad_input_gets_a_clear_answer_and_changes_nothing(
    shop: Client, product: str, quantity: str, status: int
) -> None:
    response = await shop.post(
        "/cart/add", data={"product": product, "quantity": quantity}, headers=origin(shop)
    )
    assert response.status == status
    assert "Something went wrong" not in await response.text()
    assert await cart_lines(shop) == {}


async def test_a_tampered_cookie_is_a_fresh_session(shop: Client, demo_engine: AsyncEngine) -> None:
    (product,) = await in_stock(demo_engine)
    await add(shop, product)
    good = shop.session.cookie_jar.filter_cookies(shop.make_url("/"))[COOKIE].value
    sid, _, tag = good.partition(".")
    for forged in (sid + "x." + tag, sid, "." + tag, "a" * 5000, "\u00e9t\u00e9"):
        shop.session.cookie_jar.clear()
        shop.session.cookie_jar.update_cookies({COOKIE: forged}, shop.make_url("/"))
        assert await cart_lines(shop) == {}


async def test_the_cart_survives_the_loss_of_the_app_server(
    shop: Client, demo_engine: AsyncEngine
) -> None:
    (product,) = await in_stock(demo_engine)
    await add(shop, product, 2)
    cookie = shop.session.cookie_jar.filter_cookies(shop.make_url("/"))[COOKIE].value
    other = create_app(WebConfig(), demo_engine, keys=KEYS)
    async with TestClient(TestServer(other)) as second:
        second.session.cookie_jar.update_cookies({COOKIE: cookie}, second.make_url("/"))
        assert await cart_lines(second) == {product: 2}


async def test_secure_cookie_behind_a_tls_proxy(shop: Client, demo_engine: AsyncEngine) -> None:
    (product,) = await in_stock(demo_engine)
    response = await shop.post(
        "/cart/add",
        data={"product": str(product)},
        headers={**origin(shop), "X-Forwarded-Proto": "https"},
        allow_redirects=False,
    )
    assert "Secure" in response.headers["Set-Cookie"]
    assert "HttpOnly" in response.headers["Set-Cookie"]


async def test_through_the_object_cache_and_after_losing_it(
    demo_engine: AsyncEngine, cached: CacheDaemon
) -> None:
    async with AsyncCacheClient(cached.socket_path, None, direct=False) as cache:
        app = create_app(WebConfig(), demo_engine, cache=cache, keys=KEYS)
        async with TestClient(TestServer(app)) as shop:
            (product,) = await in_stock(demo_engine)
            await add(shop, product, 3)
            sid = shop.session.cookie_jar.filter_cookies(shop.make_url("/"))[COOKIE].value
            assert await cache.get("sess:" + sid.rpartition(".")[0]) is not None
            assert await cart_lines(shop) == {product: 3}
            with CacheClient(cached.socket_path, None, direct=False) as admin:
                admin.flush()
            assert await cart_lines(shop) == {product: 3}


async def test_a_guest_cart_merges_into_the_customers_cart(demo_engine: AsyncEngine) -> None:
    carts = Carts(demo_engine, None, Catalog(demo_engine), ttl=60)
    a, b = await in_stock(demo_engine, 2)
    async with demo_engine.begin() as conn:
        done = await conn.execute(
            schema.customers.insert().values(
                email="ann@example.com", password_hash="x", name="Ann", created_at=datetime.now(UTC)
            )
        )
    customer = int(done.inserted_primary_key[0])  # type: ignore[index]
    own = Cart(None)
    own.add(a, 1)
    await carts.save(own, customer_id=customer)
    guest = Cart(None)
    guest.add(a, 2)
    guest.add(b, 1)
    guest_id = await carts.save(guest)
    merged = await carts.merge(guest_id, customer)
    assert merged == own.id
    assert (await carts.load(merged)).lines == {a: 3, b: 1}
    assert (await carts.load(guest_id)).id is None
