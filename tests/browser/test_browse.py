"""A category page with facets in a real browser (headless Chromium), keyboard only:
at a phone's width the facets start folded and the products come first (Enter on
"Filter results" unfolds them); a facet is reached with Tab and followed with Enter,
the sort is changed without JavaScript's help (the form's button), a chosen filter
is removed; at a phone's width and a desktop's, no page scrolls sideways."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from playwright.async_api import async_playwright
from sqlalchemy.ext.asyncio import AsyncEngine

from sleigh.daemons.search.client import AsyncSearchClient
from sleigh.webapp.app import create_app
from sleigh.webapp.config import WebConfig
from tests.browser.test_purchase import ARGS, CHROMIUM, VIEWPORTS, snap, tab_to


@pytest_asyncio.fixture
async def server(demo_engine: AsyncEngine, demo_search: AsyncSearchClient) -> AsyncIterator[str]:
    server = TestServer(create_app(WebConfig(page_size=12), demo_engine, search_client=demo_search))
    await server.start_server()
    try:
        yield str(server.make_url("/")).rstrip("/")
    finally:
        await server.close()


def _total(text: str) -> int:
    match = re.search(r"([\d,]+) products", text)
    assert match is not None, text
    return int(match.group(1).replace(",", ""))


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
async def test_facets_with_the_keyboard(server: str, tmp_path: Path, viewport: str) -> None:
    width, height = VIEWPORTS[viewport]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": width, "height": height})
            await page.goto(server + "/c/toys")
            await snap(page, tmp_path, "1-category", viewport)
            everything = _total(await page.inner_text("p.count"))
            folded = not await page.locator("details.filters").evaluate("d => d.open")
            first_card = await page.locator("section[aria-label=Products] li").first.bounding_box()
            assert first_card is not None
            if viewport == "phone":  # folded: the products come first, on the first screen
                assert folded and first_card["y"] < height
                await tab_to(page, "details.filters > summary")
                await page.keyboard.press("Enter")
                assert await page.locator("details.filters").evaluate("d => d.open")
            else:
                assert not folded
            facet = "#facet-brand + ul a"
            label = await page.locator(facet).first.inner_text()
            await tab_to(page, facet)
            async with page.expect_navigation():
                await page.keyboard.press("Enter")
            await snap(page, tmp_path, "2-narrowed", viewport)
            assert label in await page.inner_text("ul.chosen")
            narrowed = _total(await page.inner_text("p.count"))
            assert 0 < narrowed < everything
            await page.select_option("#sort", "price_desc")
            await tab_to(page, "form.sort button")
            async with page.expect_navigation():
                await page.keyboard.press("Enter")
            assert "sort=price_desc" in page.url and "brand=" in page.url
            assert _total(await page.inner_text("p.count")) == narrowed
            await tab_to(page, "ul.chosen a")
            async with page.expect_navigation():
                await page.keyboard.press("Enter")
            await snap(page, tmp_path, "3-removed", viewport)
            assert _total(await page.inner_text("p.count")) == everything
        finally:
            await browser.close()
