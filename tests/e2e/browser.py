"""A shopper's browser on a shop that ``sleigh up`` runs, over real HTTP.

It keeps cookies (for an IP-address host too, as browsers do), follows
redirects unless told not to, and sends every request over one keep-alive
connection, so one web worker serves all of them until that connection is
lost; :meth:`Browser.worker` names that worker. It is a
:class:`tests.web.shopper.Shopper`, so the web tests' helpers drive it.

The shops in these tests trust ``X-Real-IP`` as they would behind nginx,
and each browser sends its own address there: the request limits see each
one as a separate client.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from types import TracebackType
from typing import Unpack

import aiohttp
from aiohttp.client import _RequestContextManager, _RequestOptions
from aiohttp.typedefs import StrOrURL
from yarl import URL

__all__ = ["Browser", "Product", "browse"]

CATEGORY_LINK = re.compile(r'href="(/c/[a-z0-9/-]+)"')
PRODUCT_LINK = re.compile(r'href="(/p/(\d+)/[a-z0-9-]+)"')
TITLE = re.compile(r'<h1 id="product-title">([^<]+)</h1>')


class Browser:
    """One shopper's browser.

    :param address: the shop, as ``sleigh up`` printed it (``http://host:port/``).
    :param client_ip: the address the shop is told this client has (``X-Real-IP``).
    """

    def __init__(self, address: str, client_ip: str) -> None:
        self.url = URL(address)
        self.client_ip = client_ip
        self.jar = aiohttp.CookieJar(unsafe=True)
        self.session = aiohttp.ClientSession(
            base_url=self.url,
            cookie_jar=self.jar,
            connector=aiohttp.TCPConnector(limit_per_host=1),
            headers={"X-Real-IP": client_ip},
            timeout=aiohttp.ClientTimeout(total=30),
        )

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.session.close()

    @property
    def host(self) -> str:
        assert self.url.host is not None
        return self.url.host

    @property
    def port(self) -> int | None:
        return self.url.port

    def get(self, path: StrOrURL, **kwargs: Unpack[_RequestOptions]) -> _RequestContextManager:
        return self.session.get(path, **kwargs)

    def post(self, path: StrOrURL, **kwargs: Unpack[_RequestOptions]) -> _RequestContextManager:
        return self.session.post(path, **kwargs)

    async def page(self, path: StrOrURL) -> str:
        """GET *path* (following redirects) and check it is a page; its HTML."""
        response = await self.get(path)
        body = await response.text()
        assert response.status == 200, f"{path}: {response.status} {body[:2000]}"
        assert response.content_type == "text/html"
        return body

    def cookie(self, name: str) -> str | None:
        """The value of the cookie *name* the browser holds for the shop, if any."""
        morsel = self.jar.filter_cookies(self.url).get(name)
        return None if morsel is None else morsel.value

    async def worker(self) -> int:
        """The PID of the web worker at the other end of this browser's connection."""
        response = await self.get("/healthz")
        assert response.status == 200, await response.text()
        return int((await response.json())["pid"])


@dataclass(frozen=True)
class Product:
    """A product as its page shows it."""

    id: int
    path: str
    title: str


async def browse(browser: Browser, count: int) -> list[Product]:
    """Walk home → the first section → its product pages; the first *count* in stock."""
    home = await browser.page("/")
    section = CATEGORY_LINK.search(home)
    assert section is not None, "the home page links no section"
    listing = await browser.page(section.group(1))
    found: list[Product] = []
    for path, ident in dict.fromkeys(PRODUCT_LINK.findall(listing)):
        body = await browser.page(path)
        title = TITLE.search(body)
        assert title is not None, f"{path} has no product title"
        if 'action="/cart/add"' in body:
            found.append(Product(int(ident), path, html.unescape(title.group(1))))
        if len(found) == count:
            return found
    raise AssertionError(f"{section.group(1)} lists fewer than {count} products in stock")
