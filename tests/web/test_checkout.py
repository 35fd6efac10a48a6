"""Checkout end to end over HTTP, and the last item in stock under a race.

On SQLite and PostgreSQL: an order is placed once however often the form
is sent, stock is never oversold, a declined card gives the stock back,
and a changed or forged form places nothing.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from email import message_from_bytes
from pathlib import Path

import pytest
import pytest_asyncio
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from sleigh.webapp.app import create_app
from sleigh.webapp.config import WebConfig
from sleigh.webapp.db import schema
from sleigh.webapp.models.orders import Orders, OutOfStock
from sleigh.webapp.security.keys import Keys
from sleigh.webapp.services.mail import FileMailer
from tests.web.shopper import Shopper
from tests.web.test_cart import add, cart_lines, csrf_of, in_stock

Client = TestClient[web.Request, web.Application]
APPROVE, DECLINE = "4242 4242 4242 4242", "4000 0000 0000 0002"
DETAILS = {
    "email": "Ann@Example.com",
    "name": "Ann Smith",
    "line1": "1 Main Street",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "us",
    "shipping": "standard",
    "expiry": "12/99",
    "cvc": "123",
}


@pytest_asyncio.fixture
async def shop(demo_engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[Client]:
    app = create_app(
        WebConfig(), demo_engine, keys=Keys([b"c" * 32]), mailer=FileMailer(tmp_path / "mail")
    )
    async with TestClient(TestServer(app)) as client:
        yield client


async def stock(engine: AsyncEngine, product: int) -> tuple[int, int]:
    inv = schema.inventory.c
    query = sa.select(inv.on_hand, inv.reserved).where(inv.product_id == product)
    async with engine.connect() as conn:
        row = (await conn.execute(query)).one()
    return row.on_hand, row.reserved


async def order_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(schema.orders)
        return int((await conn.execute(query)).scalar_one())


async def review(shop: Shopper, card: str = APPROVE, **changes: str) -> tuple[str, str]:
    """Fill the checkout form; the review page's sealed state and CSRF token."""
    page = await shop.get("/checkout")
    assert page.status == 200
    form = {**DETAILS, "card": card, "csrf": csrf_of(await page.text()), **changes}
    response = await shop.post("/checkout", data=form)
    body = await response.text()
    assert response.status == 200, body
    match = re.search(r'name="state" value="([^"]+)"', body)
    assert match is not None
    return match.group(1), csrf_of(body)


async def place(shop: Shopper, review: tuple[str, str]) -> str:
    state, token = review
    response = await shop.post(
        "/checkout/place", data={"csrf": token, "state": state}, allow_redirects=False
    )
    assert response.status == 303
    return response.headers["Location"]


async def test_a_guest_buys_and_gets_a_confirmation(
    shop: Client, demo_engine: AsyncEngine, tmp_path: Path
) -> None:
    (product,) = await in_stock(demo_engine)
    before = await stock(demo_engine, product)
    await add(shop, product, 2)
    where = await place(shop, await review(shop))
    assert re.fullmatch(r"/orders/\d{6}-[A-Z0-9]{6}", where)
    page = await shop.get(where)
    body = await page.text()
    assert page.status == 200 and "Thank you" in body and "Paid" in body
    assert page.headers["Cache-Control"] == "private, no-store"
    assert await stock(demo_engine, product) == (before[0], before[1] + 2)
    assert await cart_lines(shop) == {}
    (mail,) = (tmp_path / "mail").glob("*.eml")
    message = message_from_bytes(mail.read_bytes())
    assert message["To"] == "ann@example.com"
    assert where.rsplit("/", 1)[1] in message["Subject"]


async def test_sending_the_order_twice_places_it_once(
    shop: Client, demo_engine: AsyncEngine
) -> None:
    (product,) = await in_stock(demo_engine)
    await add(shop, product)
    state = await review(shop)
    first = await place(shop, state)
    again = await place(shop, state)
    assert first == again
    assert await order_count(demo_engine) == 1


async def test_a_declined_card_gives_the_stock_back(shop: Client, demo_engine: AsyncEngine) -> None:
    (product,) = await in_stock(demo_engine)
    before = await stock(demo_engine, product)
    await add(shop, product)
    where = await place(shop, await review(shop, DECLINE))
    body = await (await shop.get(where)).text()
    assert "declined" in body
    assert await stock(demo_engine, product) == before
    assert await cart_lines(shop) == {product: 1}


async def test_bad_details_are_named_and_place_nothing(
    shop: Client, demo_engine: AsyncEngine
) -> None:
    (product,) = await in_stock(demo_engine)
    await add(shop, product)
    token = csrf_of(await (await shop.get("/checkout")).text())
    bad = {
        **DETAILS,
        "email": "not-an-email",
        "postal_code": "<script>",
        "card": "1234",
        "csrf": token,
    }
    response = await shop.post("/checkout", data=bad)
    body = await response.text()
    assert response.status == 400
    assert "does not look like an email" in body and "postcode" in body
    assert "<script>" not in body
    assert await order_count(demo_engine) == 0


async def test_a_forged_or_foreign_review_places_nothing(
    shop: Client, demo_engine: AsyncEngine
) -> None:
    (product,) = await in_stock(demo_engine)
    await add(shop, product)
    state = await review(shop)
    assert await place(shop, (state[0][:-4] + "AAAA", state[1])) == "/checkout"
    shop.session.cookie_jar.clear()
    await add(shop, product)  # another shopper, with the first one's sealed form
    token = csrf_of(await (await shop.get("/cart")).text())
    assert await place(shop, (state[0], token)) == "/checkout"
    assert await order_count(demo_engine) == 0


async def test_an_order_page_is_only_for_its_shopper(
    shop: Client, demo_engine: AsyncEngine
) -> None:
    (product,) = await in_stock(demo_engine)
    await add(shop, product)
    where = await place(shop, await review(shop))
    shop.session.cookie_jar.clear()
    assert (await shop.get(where)).status == 404


async def test_the_last_items_go_to_exactly_as_many_buyers(demo_engine: AsyncEngine) -> None:
    (product,) = await in_stock(demo_engine)
    on_hand, _reserved = await stock(demo_engine, product)
    left = 3
    async with demo_engine.begin() as conn:
        inv = schema.inventory
        await conn.execute(
            inv.update().where(inv.c.product_id == product).values(reserved=on_hand - left)
        )
    orders = Orders(demo_engine)

    async def buy(n: int) -> bool:
        try:
            await orders.reserve(
                f"race-{n}",
                {product: 1},
                email="a@b.co",
                method="standard",
                address={"name": "x"},
                customer_id=None,
            )
        except OutOfStock:
            return False
        return True

    results = await asyncio.gather(*(buy(n) for n in range(100)))
    assert sum(results) == left
    assert await stock(demo_engine, product) == (on_hand, on_hand)
    assert await order_count(demo_engine) == left


@pytest.mark.parametrize(
    ("card", "expiry", "cvc", "message"),
    [
        ("4242 4242 4242 4241", "12/99", "123", "not valid"),
        ("4242424242424242", "13/99", "123", "expired"),
        ("4242424242424242", "01/20", "123", "expired"),
        ("4242424242424242", "1299", "123", "MM/YY"),
        ("4242424242424242", "12/99", "12", "3 or 4 digits"),
    ],
)
async def test_card_details_are_checked(card: str, expiry: str, cvc: str, message: str) -> None:
    from sleigh.webapp.services.payments import PaymentError, SandboxProvider

    with pytest.raises(PaymentError, match=message):
        await SandboxProvider().tokenize(card, expiry, cvc)


async def test_the_sandbox_answers_by_card_number() -> None:
    from sleigh.webapp.services.payments import SandboxProvider

    sandbox = SandboxProvider(slow_seconds=0.01)
    answers = {}
    for number in ("4242424242424242", "4000000000000002", "4000000000009995", "4000000000000259"):
        token, label = await sandbox.tokenize(number, "12/99", "123")
        assert label.endswith(number[-4:])
        answers[number] = await sandbox.authorize(token, 1000, f"ref-{number}")
    assert [a.approved for a in answers.values()] == [True, False, False, True]
    assert "insufficient" in answers["4000000000009995"].reason
    again = await sandbox.authorize("tok_decline_x", 1000, "ref-4242424242424242")
    assert again == answers["4242424242424242"]
