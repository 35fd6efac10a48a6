"""The bare yardstick pages of ``scripts/bench_web.py``: aiohttp + uvloop + Mako with no
data access, served on the sockets handed over as ``LISTEN_FDS`` until SIGTERM.

``product``: the shop's own ``product.mako`` (and the templates it includes) for each
of the given ids at ``/p/<id>``, with the data the product controller gives it, read
from the home's database once at start and held in memory: no middleware, session,
throttle, cache, access log or caching headers. ``list``: a minimal template of about
the given size at ``/``. Run by ``bench_web.py``:

    python scripts/yardstick_pages.py product --home HOME --ids 1,2,3 [--database-url URL]
    python scripts/yardstick_pages.py list --size 4900
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

#: A yardstick's request handler.
Handler = Callable[[Any], Awaitable[Any]]

_BARE_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title></head>
<body><header><h1>${title}</h1><p>${price}</p></header>
<main><ul>
% for item in items:
<li><a href="/p/${item['id']}">${item['title']}</a> <span>${item['text']}</span></li>
% endfor
</ul></main></body></html>
"""


def bare_items(size: int) -> list[dict[str, object]]:
    """Items that make the yardstick page about *size* bytes."""
    text = "sturdy wooden train set & magnetic couplings <painted> for little engineers"
    line = len(f'<li><a href="/p/1000">Toy 1000</a> <span>{text}</span></li>\n') + 20
    return [{"id": i, "title": f"Toy {i}", "text": text} for i in range(max(1, size // line))]


def serve_page(
    kind: str, size: int, home: Path | None, ids: list[int], database_url: str = ""
) -> int:
    """Serve a yardstick page on the handed-over socket until SIGTERM.

    ``list``: a minimal template of *size* bytes at ``/``. ``product``: the shop's
    own ``product.mako`` for each of *ids* at ``/p/<id>``, with the data the product
    controller gives it, read from the shop's database (*database_url*; empty: SQLite in
    *home*) once at start and held in memory.
    """
    import asyncio

    import uvloop
    from aiohttp import web

    from sleigh.daemons.runtime.notify import Notifier
    from sleigh.daemons.runtime.signals import Signals
    from sleigh.daemons.runtime.sockets import listen_fds

    async def serve() -> int:
        app = web.Application()
        if kind == "product":
            assert home is not None
            app.router.add_get(r"/p/{id:\d+}", await _bare_product_page(home, ids, database_url))
        else:
            app.router.add_get("/", _bare_list_page(size))
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        for sock in listen_fds(os.environ):
            await web.SockSite(runner, sock).start()
        with Signals() as signals:
            Notifier(os.environ).ready()
            await signals.wait()
        await asyncio.wait_for(runner.cleanup(), 10)
        return 0

    return uvloop.run(serve())


def _bare_list_page(size: int) -> Handler:
    from aiohttp import web
    from mako.lookup import TemplateLookup

    lookup = TemplateLookup(default_filters=["str", "h"], strict_undefined=True)
    lookup.put_string("page.mako", _BARE_TEMPLATE)
    items = bare_items(size)

    async def page(request: web.Request) -> web.Response:
        body = lookup.get_template("page.mako").render(title="Toy", price="$9.99", items=items)
        return web.Response(text=body, content_type="text/html")

    return page


async def _bare_product_page(home: Path, ids: list[int], database_url: str) -> Handler:
    """The product page rendered by the shop's views from data held in memory: no
    session, throttle, cache, database, access log or caching headers per request."""
    from aiohttp import web

    from sleigh.daemons.runtime.config import load_section
    from sleigh.webapp.controllers.catalog import product_view
    from sleigh.webapp.db import create_engine
    from sleigh.webapp.db.config import DatabaseConfig
    from sleigh.webapp.models.catalog import Catalog
    from sleigh.webapp.views import Views

    engine = create_engine(load_section(DatabaseConfig, {"url": database_url}, {}), home)
    try:
        catalog = Catalog(engine)  # no cache: straight from the database, once
        pages = {i: await catalog.product_page(i) for i in ids}
    finally:
        await engine.dispose()
    views = Views()
    contexts = {i: product_view(page) for i, page in pages.items() if page is not None}

    async def page(request: web.Request) -> web.Response:
        context = contexts[int(request.match_info["id"])]
        body = views.render_text("product.mako", request_id="", nav=context["tree"], **context)
        return web.Response(text=body, content_type="text/html")

    return page


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=("list", "product"), help="which page")
    parser.add_argument("--size", type=int, default=20_000, help="list: the page's bytes")
    parser.add_argument("--home", type=Path, help="product: the shop's home")
    parser.add_argument("--ids", default="", help="product: comma-separated product ids")
    parser.add_argument(
        "--database-url", default="", help="product: the shop's database (default: SQLite in HOME)"
    )
    args = parser.parse_args(argv)
    if args.kind == "product" and args.home is None:
        parser.error("product needs --home")
    ids = [int(i) for i in args.ids.split(",") if i]
    return serve_page(args.kind, args.size, args.home, ids, args.database_url)


if __name__ == "__main__":
    sys.exit(main())
