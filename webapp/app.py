"""The application factory: ``create_app(config, engine)`` and nothing global."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from ..daemons.search.client import AsyncSearchClient
from . import middleware
from .config import WebConfig
from .controllers import catalog, health, images, search
from .keys import CATALOG, CONFIG, ENGINE, SEARCH, VIEWS
from .models.catalog import Catalog, TTLs
from .models.store import ObjectCache
from .views import Views, cache_headers

STATIC = Path(__file__).parent / "static"


def create_app(
    config: WebConfig,
    engine: AsyncEngine,
    *,
    cache: ObjectCache | None = None,
    views: Views | None = None,
    search_client: AsyncSearchClient | None = None,
) -> web.Application:
    """Build the storefront application.

    :param config: the ``[web]`` section.
    :param engine: the shop database; the caller owns it and disposes of it.
    :param cache: the host's object cache (the caller owns it), or ``None``.
    :param search_client: the search daemons' client (the caller owns it), or ``None``:
        the search page then answers 503.
    """
    app = web.Application(
        middlewares=[middleware.request_id, middleware.errors],
        client_max_size=config.max_body,
    )
    app[CONFIG] = config
    app[ENGINE] = engine
    app[VIEWS] = views or Views()
    ttls = TTLs(config.tree_ttl, config.product_ttl, config.stock_ttl, config.listing_ttl)
    app[CATALOG] = Catalog(engine, cache, ttls)
    if search_client is not None:
        app[SEARCH] = search_client
    for table in (catalog.routes, health.routes, images.routes, search.routes):
        app.router.add_routes(table)
    app.router.add_static("/static", STATIC, name="static")

    async def static_cache(request: web.Request, response: web.StreamResponse) -> None:
        if request.path.startswith("/static/"):
            cache_headers(response, config.static_max_age)

    app.on_response_prepare.append(static_cache)
    return app
