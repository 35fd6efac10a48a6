"""A purchase in a real browser (headless Chromium), with the keyboard only.

The shop runs in process on the demo catalog; Playwright drives Debian's
Chromium. Every step moves focus with Tab and acts with Enter or typing,
so the test fails if a control cannot be reached from the keyboard. Each
page is photographed at a phone's width and a desktop's (the screenshots
go to ``$SLEIGH_TEST_ARTIFACTS`` if set, else the test's temporary
directory), and no page may scroll sideways on the phone.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import sqlalchemy as sa
from aiohttp.test_utils import TestServer
from playwright.async_api import Page, async_playwright
from sqlalchemy.ext.asyncio import AsyncEngine

from sleigh.webapp.app import create_app
from sleigh.webapp.config import WebConfig
from sleigh.webapp.db import schema

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and os.environ.get("SLEIGH_TEST_REQUIRE_BROWSER") != "1":
    pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORTS = {"phone": (390, 844), "desktop": (1280, 800)}


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    out = Path(os.environ.get("SLEIGH_TEST_ARTIFACTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    return out


def screenshots(out: Path, viewport: str) -> list[str]:
    return sorted(path.name for path in out.glob(f"{viewport}-*.png"))


@pytest_asyncio.fixture
async def server(demo_engine: AsyncEngine) -> AsyncIterator[str]:
    server = TestServer(create_app(WebConfig(), demo_engine))
    await server.start_server()
    try:
        yield str(server.make_url("/")).rstrip("/")
    finally:
        await server.close()


async def tab_to(page: Page, selector: str, limit: int = 80) -> None:
    """Press Tab until *selector* has the focus."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} cannot be reached with Tab")


async def fill(page: Page, fields: dict[str, str]) -> None:
    for name, text in fields.items():
        await tab_to(page, f"[name={name}]")
        await page.keyboard.type(text)


async def snap(page: Page, out: Path, name: str, viewport: str) -> None:
    await page.screenshot(path=str(out / f"{viewport}-{name}.png"), full_page=True)
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{name} scrolls sideways on the {viewport} by {overflow}px"


async def product_in_stock(engine: AsyncEngine) -> int:
    inv = schema.inventory.c
    query = sa.select(sa.func.min(inv.product_id)).where(inv.on_hand - inv.reserved > 5)
    async with engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
async def test_a_purchase_with_the_keyboard_only(
    server: str, demo_engine: AsyncEngine, artifacts: Path, viewport: str
) -> None:
    out = artifacts
    product = await product_in_stock(demo_engine)
    width, height = VIEWPORTS[viewport]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": width, "height": height})
            await page.goto(f"{server}/")
            await snap(page, out, "1-home", viewport)
            await page.goto(f"{server}/p/{product}")
            await snap(page, out, "2-product", viewport)
            await tab_to(page, "form.add button")
            await page.keyboard.press("Enter")
            await page.wait_for_url("**/cart")
            assert "Added" in await page.inner_text("main")
            await snap(page, out, "3-cart", viewport)
            await tab_to(page, "a[href='/checkout']")
            await page.keyboard.press("Enter")
            await page.wait_for_url("**/checkout")
            await fill(
                page,
                {
                    "email": "kim@example.com",
                    "name": "Kim Lee",
                    "line1": "5 Elm Road",
                    "city": "Portland",
                    "postal_code": "97201",
                    "card": "4242 4242 4242 4242",
                    "expiry": "12/40",
                    "cvc": "123",
                },
            )
            await snap(page, out, "4-checkout", viewport)
            await tab_to(page, "form.checkout button[type=submit]")
            await page.keyboard.press("Enter")
            await page.wait_for_selector("text=Review your order")
            await snap(page, out, "5-review", viewport)
            await tab_to(page, "form[action='/checkout/place'] button")
            await page.keyboard.press("Enter")
            await page.wait_for_selector("text=Thank you")
            await snap(page, out, "6-confirmation", viewport)
            assert "Paid" in await page.inner_text("main")
        finally:
            await browser.close()
    assert len(screenshots(out, viewport)) == 6
