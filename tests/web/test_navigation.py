"""The section navigation on every page, the controllers passing nothing for it.

Pages that load no catalog data (cart, account, checkout, error pages)
show it too; when the tree cannot be loaded, pages still render, without it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from sleigh.webapp.app import create_app
from sleigh.webapp.config import WebConfig
from sleigh.webapp.models.catalog import Catalog
from sleigh.webapp.navigation import Navigation
from sleigh.webapp.security.keys import Keys
from sleigh.webapp.services.mail import FileMailer
from tests.web.test_account import signup
from tests.web.test_cart import add, in_stock

Client = TestClient[web.Request, web.Application]
SECTIONS = [("/c/toys", "Toys"), ("/c/books", "Books"), ("/c/video-games", "Video Games")]
NAV = re.compile(r'<nav aria-label="Sections">(.*?)</nav>', re.S)


async def _boom(request: web.Request) -> web.Response:
    raise RuntimeError("the handler failed on purpose")


@pytest_asyncio.fixture
async def shop(demo_engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[Client]:
    app = create_app(
        WebConfig(), demo_engine, keys=Keys([b"n" * 32]), mailer=FileMailer(tmp_path / "mail")
    )
    app.router.add_get("/boom", _boom)
    async with TestClient(TestServer(app)) as client:
        yield client


def sections(body: str) -> list[tuple[str, str]]:
    """The (link, name) pairs of the header's section navigation; [] if it has none."""
    match = NAV.search(body)
    return re.findall(r'<a href="([^"]+)">([^<]+)</a>', match.group(1)) if match else []


async def page(shop: Client, path: str, status: int = 200) -> str:
    response = await shop.get(path)
    body = await response.text()
    assert response.status == status, body
    return body


async def test_pages_without_catalog_data_show_the_sections(
    shop: Client, demo_engine: AsyncEngine
) -> None:
    assert sections(await page(shop, "/cart")) == SECTIONS
    assert sections(await page(shop, "/account/signin")) == SECTIONS
    (product,) = await in_stock(demo_engine)
    await add(shop, product)
    assert sections(await page(shop, "/checkout")) == SECTIONS
    await signup(shop)
    assert sections(await page(shop, "/account")) == SECTIONS


async def test_error_pages_show_the_sections(shop: Client) -> None:
    assert sections(await page(shop, "/no/such/page", 404)) == SECTIONS
    assert sections(await page(shop, "/c/no-such-section", 404)) == SECTIONS
    response = await shop.post("/c/toys")
    assert response.status == 405
    assert sections(await response.text()) == SECTIONS
    assert sections(await page(shop, "/boom", 500)) == SECTIONS


async def test_catalog_pages_still_show_the_sections(
    shop: Client, demo_engine: AsyncEngine
) -> None:
    (product,) = await in_stock(demo_engine)
    for path in ("/", "/c/books", f"/p/{product}"):
        assert sections(await page(shop, path)) == SECTIONS


async def _lose_the_categories(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text("ALTER TABLE categories RENAME TO categories_lost"))


async def _restore_the_categories(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text("ALTER TABLE categories_lost RENAME TO categories"))


async def test_pages_render_without_the_sections_when_the_tree_cannot_load(
    shop: Client, demo_engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    await _lose_the_categories(demo_engine)
    with caplog.at_level(logging.WARNING, "sleigh.web.navigation"):
        body = await page(shop, "/boom", 500)
        assert "Something went wrong on our side." in body
        assert sections(body) == []
        assert sections(await page(shop, "/no/such/page", 404)) == []
        assert sections(await page(shop, "/cart")) == []
    warnings = [r for r in caplog.records if r.name == "sleigh.web.navigation"]
    assert len(warnings) == 1  # tried once; again only after the retry delay
    assert "cannot load the category tree" in warnings[0].getMessage()
    assert "pages show none" in warnings[0].getMessage()


async def test_the_tree_is_loaded_once_per_ttl_and_kept_through_a_failure(
    demo_engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    now = [0.0]
    nav = Navigation(Catalog(demo_engine), ttl=300, retry=5, clock=lambda: now[0])
    tree = await nav.current()
    assert tree is not None and [r.slug for r in tree.roots] == ["toys", "books", "video-games"]
    await _lose_the_categories(demo_engine)
    now[0] = 299.0
    assert await nav.current() is tree  # not due: not asked
    assert not caplog.records
    now[0] = 300.0
    with caplog.at_level(logging.WARNING, "sleigh.web.navigation"):
        assert await nav.current() is tree  # due, but the database fails: the last tree stays
        now[0] = 304.0
        assert await nav.current() is tree  # within the retry delay: not asked again
    assert ["keeping the last one" in r.getMessage() for r in caplog.records] == [True]
    async with demo_engine.begin() as conn:
        await conn.execute(
            sa.text("UPDATE categories_lost SET name = 'Playthings' WHERE path = 'toys'")
        )
    await _restore_the_categories(demo_engine)
    now[0] = 305.0
    again = await nav.current()  # the retry delay is over: loaded again
    assert again is not None and again.roots[0].name == "Playthings"
