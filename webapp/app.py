"""The application factory: ``create_app(config, engine)`` and nothing global."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from ..daemons.search.client import AsyncSearchClient
from . import metrics, middleware
from .config import WebConfig
from .controllers import account, cart, catalog, checkout, health, images, search
from .keys import ACCOUNTS, CARTS, CATALOG, CHECKOUT, CONFIG, ENGINE, HEALTH, RESET, SEARCH, VIEWS
from .models.cart import Carts
from .models.catalog import Catalog, TTLs
from .models.customers import Customers
from .models.orders import Orders
from .models.store import ObjectCache
from .navigation import Navigation
from .security.forms import TOKENS, CsrfTokens
from .security.headers import add_security_headers
from .security.keys import Keys, Signer
from .security.sealed import Sealer
from .security.sessions import STORE, SessionStore, sessions
from .services.checkout import Checkout
from .services.mail import ConsoleMailer, Mailer
from .services.payments import PaymentProvider, SandboxProvider
from .throttle import Throttle
from .views import Views, cache_headers

STATIC = Path(__file__).parent / "static"


def _models(
    app: web.Application,
    cache: ObjectCache | None,
    keys: Keys,
    payments: PaymentProvider | None,
    mailer: Mailer | None,
) -> None:
    """The models beside the catalog: carts, sessions, forms' tokens, accounts, checkout."""
    config, engine = app[CONFIG], app[ENGINE]
    app[CARTS] = Carts(engine, cache, app[CATALOG], config.cart_ttl)
    app[STORE] = SessionStore(engine, cache, keys, ttl=config.session_ttl)
    app[TOKENS] = CsrfTokens(keys)
    app[ACCOUNTS] = Customers(engine)
    app[RESET] = Signer(keys, "password-reset")
    app[CHECKOUT] = Checkout(
        orders=Orders(engine),
        payments=payments or SandboxProvider(slow_seconds=config.sandbox_slow),
        mailer=mailer or ConsoleMailer(),
        sealer=Sealer(keys, "checkout"),
        max_age=config.checkout_ttl,
    )


def _response_headers(
    max_age: float,
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """The response hook (one: each is a coroutine a response): the security headers,
    and for static files how long they may be cached."""

    async def response_headers(request: web.Request, response: web.StreamResponse) -> None:
        add_security_headers(response)
        if request.path.startswith("/static/"):
            cache_headers(response, max_age)

    return response_headers


def create_app(
    config: WebConfig,
    engine: AsyncEngine,
    *,
    cache: ObjectCache | None = None,
    views: Views | None = None,
    keys: Keys | None = None,
    payments: PaymentProvider | None = None,
    mailer: Mailer | None = None,
    throttle: Throttle | None = None,
    search_client: AsyncSearchClient | None = None,
) -> web.Application:
    """Build the storefront application.

    :param config: the ``[web]`` section.
    :param engine: the shop database; the caller owns it and disposes of it.
    :param cache: the host's object cache (the caller owns it), or ``None``.
    :param keys: the secret keys for cookies and forms (``None``: a random key,
        good for this process only).
    :param payments: the payment provider (``None``: the sandbox).
    :param mailer: where mail goes (``None``: the log).
    :param throttle: the request limits middleware, or ``None`` (no limits).
    :param search_client: the search daemons' client (the caller owns it), or ``None``:
        the search page then answers 503.
    """
    ttls = TTLs(
        config.tree_ttl, config.product_ttl, config.stock_ttl, config.listing_ttl, config.price_ttl
    )
    catalog_model = Catalog(engine, cache, ttls)
    requests = metrics.Requests()
    app = web.Application(
        middlewares=[
            requests.middleware,
            middleware.request_id,
            middleware.errors,
            Navigation(catalog_model, config.tree_ttl).middleware,
            middleware.freshness,
            sessions(config.cookie_secure),
        ],
        client_max_size=config.max_body,
    )
    app[CONFIG] = config
    app[HEALTH] = {}
    app[ENGINE] = engine
    app[VIEWS] = views or Views(page_max_age=config.page_max_age)
    app[CATALOG] = catalog_model
    _models(app, cache, keys or Keys.random(), payments, mailer)
    if cache is not None:
        app[HEALTH]["cache"] = cache.ping
    if search_client is not None:
        app[SEARCH] = search_client
        app[HEALTH]["search"] = search_client.stats
    for module in (catalog, cart, checkout, account, search, health, images):
        app.router.add_routes(module.routes)
    app.router.add_static("/static", STATIC, name="static")
    registry = metrics.install(app, requests, engine, [catalog_model.through, app[CARTS].through])
    if throttle is not None:
        throttle.install(app, registry)
        if throttle.client is not None:
            app[HEALTH]["throttle"] = throttle.client.stats
    app.on_response_prepare.append(_response_headers(config.static_max_age))
    return app
