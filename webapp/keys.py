"""Typed keys for what the application object carries (aiohttp ``AppKey``)."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from ..daemons.search.client import AsyncSearchClient
from .config import WebConfig
from .models.catalog import Catalog
from .views import Views

CONFIG = web.AppKey("config", WebConfig)
ENGINE = web.AppKey("engine", AsyncEngine)
CATALOG = web.AppKey("catalog", Catalog)
VIEWS = web.AppKey("views", Views)
#: The search daemons' client; absent when the app was built without one (search answers 503).
SEARCH = web.AppKey("search", AsyncSearchClient)
