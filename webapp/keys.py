"""Typed keys for what the application object carries (aiohttp ``AppKey``)."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from .config import WebConfig
from .models.catalog import Catalog
from .views import Views

CONFIG = web.AppKey("config", WebConfig)
ENGINE = web.AppKey("engine", AsyncEngine)
CATALOG = web.AppKey("catalog", Catalog)
VIEWS = web.AppKey("views", Views)
