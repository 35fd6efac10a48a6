"""Typed keys for what the application object carries (aiohttp ``AppKey``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from ..daemons.search.client import AsyncSearchClient
from .config import WebConfig
from .models.cart import Carts
from .models.catalog import Catalog
from .models.customers import Customers
from .security.keys import Signer
from .services.checkout import Checkout
from .views import Views

CONFIG = web.AppKey("config", WebConfig)
ENGINE = web.AppKey("engine", AsyncEngine)
CATALOG = web.AppKey("catalog", Catalog)
VIEWS = web.AppKey("views", Views)
CARTS = web.AppKey("carts", Carts)
CHECKOUT = web.AppKey("checkout", Checkout)
ACCOUNTS = web.AppKey("accounts", Customers)
#: Signs the tokens of password-reset links.
RESET = web.AppKey("reset_signer", Signer)
#: Daemons ``/healthz`` checks: name -> a coroutine function that raises if it is down.
HEALTH = web.AppKey("health_checks", dict[str, Callable[[], Awaitable[object]]])
#: The search daemons' client; absent when the app was built without one (search answers 503).
SEARCH = web.AppKey("search", AsyncSearchClient)
