from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from sleigh.webapp.app import create_app
from sleigh.webapp.config import WebConfig


async def _boom(request: web.Request) -> web.Response:
    raise RuntimeError("the handler failed on purpose")


@pytest.fixture
def web_app(demo_engine: AsyncEngine) -> web.Application:
    app = create_app(WebConfig(page_size=10), demo_engine)
    app.router.add_get("/boom", _boom)
    return app


@pytest_asyncio.fixture
async def client(
    web_app: web.Application,
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with TestClient(TestServer(web_app)) as c:
        yield c
