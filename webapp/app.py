"""The application factory: ``create_app(config, engine)`` and nothing global."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from . import metrics, middleware
from .config import WebConfig
from .controllers import catalog, health, images
from .keys import CATALOG, CONFIG, ENGINE, VIEWS
from .models.catalog import Catalog, TTLs
from .models.store import ObjectCache
from .throttle import Throttle
from .views import Views, cache_headers

STATIC = Path(__file__).parent / "static"


def create_app(
    config: WebConfig,
    engine: AsyncEngine,
    *,
    cache: ObjectCache | None = None,
    views: Views | None = None,
    throttle: Throttle | None = None,
) -> web.Application:
    """Build the storefront application.

    :param config: the ``[web]`` section.
    :param engine: the shop database; the caller owns it and disposes of it.
    :param cache: the host's object cache (the caller owns it), or ``None``.
    :param throttle: the request limits middleware, or ``None`` (no limits).
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
    for table in (catalog.routes, health.routes, images.routes):
        app.router.add_routes(table)
    app.router.add_static("/static", STATIC, name="static")
    registry = metrics.install(app)
    if throttle is not None:
        throttle.install(app, registry)

    async def static_cache(request: web.Request, response: web.StreamResponse) -> None:
        if request.path.startswith("/static/"):
            cache_headers(response, config.static_max_age)

    app.on_response_prepare.append(static_cache)
    return app
