"""Accounts over HTTP: sign up, sign in with the guest cart merged, sign out,
password reset by mailed link, addresses, order history (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from email import message_from_bytes
from pathlib import Path

import pytest_asyncio
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from sleigh.webapp.app import create_app
from sleigh.webapp.config import WebConfig
from sleigh.webapp.security.keys import Keys
from sleigh.webapp.security.sessions import COOKIE
from sleigh.webapp.services.mail import FileMailer
from tests.web.shopper import Shopper
from tests.web.test_cart import add, cart_lines, csrf_of, in_stock
from tests.web.test_checkout import place, review

Client = TestClient[web.Request, web.Application]
PASSWORD = "correct horse battery"


@pytest_asyncio.fixture
async def shop(demo_engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[Client]:
    app = create_app(
        WebConfig(), demo_engine, keys=Keys([b"a" * 32]), mailer=FileMailer(tmp_path / "mail")
    )
    async with TestClient(TestServer(app)) as client:
        yield client


async def post_form(
    shop: Shopper, page: str, data: dict[str, str], action: str = ""
) -> ClientResponse:
    token = csrf_of(await (await shop.get(page)).text())
    response = await shop.post(action or page, data={**data, "csrf": token}, allow_redirects=False)
    return response


async def signup(shop: Shopper, email: str = "bo@example.com", password: str = PASSWORD) -> None:
    data = {"name": "Bo", "email": email, "password": password, "confirm": password}
    response = await post_form(shop, "/account/signup", data)
    assert response.status == 303, await response.text()


async def signin(shop: Shopper, password: str = PASSWORD, next_: str = "") -> ClientResponse:
    action = "/account/signin" + (f"?next={next_}" if next_ else "")
    data = {"email": "BO@example.com", "password": password}
    return await post_form(shop, "/account/signin", data, action)


def sid(shop: Client) -> str:
    return shop.session.cookie_jar.filter_cookies(shop.make_url("/"))[COOKIE].value


async def test_sign_up_in_and_out(shop: Client) -> None:
    await signup(shop)
    page = await shop.get("/account")
    assert page.status == 200 and "Hello, Bo" in await page.text()
    before = sid(shop)
    out = await post_form(shop, "/account", {}, "/account/signout")
    assert out.status == 303
    assert sid(shop) != before
    assert (await shop.get("/account", allow_redirects=False)).status == 303
    wrong = await signin(shop, "not the password")
    assert wrong.status == 400
    assert "do not match" in await wrong.text()
    right = await signin(shop, next_="//evil.example/x")
    assert right.status == 303 and right.headers["Location"] == "/account"
    assert sid(shop) != before


async def test_bad_sign_ups_are_refused(shop: Client) -> None:
    await signup(shop)
    shop.session.cookie_jar.clear()
    cases = [
        ({"email": "bo@example.com"}, "has an account already"),
        ({"email": "x@example.com", "password": "short", "confirm": "short"}, "10 to 200"),
        ({"email": "x@example.com", "confirm": "other password!"}, "not the same"),
        ({"email": "nope"}, "does not look like"),
        ({"email": "y@example.com", "name": ""}, "your name"),
    ]
    for changes, message in cases:
        data = {"name": "Cy", "password": PASSWORD, "confirm": PASSWORD, **changes}
        response = await post_form(shop, "/account/signup", data)
        assert response.status == 400
        assert message in await response.text()


async def test_the_guest_cart_joins_the_account_cart(
    shop: Client, demo_engine: AsyncEngine
) -> None:
    first, second = await in_stock(demo_engine, 2)
    await signup(shop)
    await add(shop, first)
    await post_form(shop, "/account", {}, "/account/signout")
    assert await cart_lines(shop) == {}
    await add(shop, first, 2)
    await add(shop, second)
    assert (await signin(shop)).status == 303
    assert await cart_lines(shop) == {first: 3, second: 1}


async def test_a_cart_begun_as_a_guest_stays_with_the_account(
    shop: Client, demo_engine: AsyncEngine
) -> None:
    first, second = await in_stock(demo_engine, 2)
    await add(shop, first)
    await signup(shop)  # the guest cart becomes the account's
    await post_form(shop, "/account", {}, "/account/signout")
    assert await cart_lines(shop) == {}
    await add(shop, second)
    assert (await signin(shop)).status == 303
    assert await cart_lines(shop) == {first: 1, second: 1}


async def test_orders_show_in_the_history(shop: Client, demo_engine: AsyncEngine) -> None:
    (product,) = await in_stock(demo_engine)
    await signup(shop)
    await add(shop, product)
    where = await place(shop, await review(shop))
    number = where.rsplit("/", 1)[1]
    body = await (await shop.get("/account")).text()
    assert number in body and "Paid" in body


async def test_password_reset_by_mailed_link(shop: Client, tmp_path: Path) -> None:
    await signup(shop)
    await post_form(shop, "/account", {}, "/account/signout")
    unknown = await post_form(shop, "/account/reset", {"email": "nobody@example.com"})
    known = await post_form(shop, "/account/reset", {"email": "bo@example.com"})
    assert unknown.status == known.status == 303
    (mail,) = (tmp_path / "mail").glob("*.eml")
    text = message_from_bytes(mail.read_bytes()).get_payload(decode=True).decode()  # type: ignore[union-attr]
    match = re.search(r"http://[^/]+(/account/reset/\S+)", text)
    assert match is not None
    link = match.group(1)
    forged = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    assert (await shop.get(forged, allow_redirects=False)).headers["Location"] == "/account/reset"
    new = "a brand new password"
    done = await post_form(shop, link, {"password": new, "confirm": new})
    assert done.status == 303 and done.headers["Location"] == "/account"
    assert (await shop.get(link, allow_redirects=False)).status == 303  # used once
    await post_form(shop, "/account", {}, "/account/signout")
    assert (await signin(shop)).status == 400
    assert (await signin(shop, new)).status == 303


async def test_addresses(shop: Client) -> None:
    await signup(shop)
    address = {
        "name": "Bo Smith",
        "line1": "2 High St",
        "city": "Leeds",
        "postal_code": "LS1 1AA",
        "country": "gb",
    }
    saved = await post_form(shop, "/account", address, "/account/addresses")
    assert saved.status == 303
    body = await (await shop.get("/account")).text()
    assert "2 High St" in body and "LS1 1AA GB" in body
    bad = await post_form(shop, "/account", {**address, "country": "G1"}, "/account/addresses")
    assert bad.status == 303
    assert "two-letter country code" in await (await shop.get("/account")).text()
    ident = re.search(r'name="delete" value="(\d+)"', body)
    assert ident is not None
    await post_form(shop, "/account", {"delete": ident.group(1)}, "/account/addresses")
    assert "2 High St" not in await (await shop.get("/account")).text()
