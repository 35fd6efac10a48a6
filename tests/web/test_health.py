"""``/healthz``: the database decides up or down; a daemon down is "degraded"."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from sleigh.daemons.cache.client import AsyncCacheClient
from sleigh.webapp.app import create_app
from sleigh.webapp.config import WebConfig
from tests.plugins.cache import CacheDaemon


async def test_every_daemon_is_checked(
    demo_engine: AsyncEngine, cached: CacheDaemon, tmp_path: Path
) -> None:
    async with AsyncCacheClient(cached.socket_path, None, direct=False) as cache:
        app = create_app(WebConfig(), demo_engine, cache=cache)
        async with TestClient(TestServer(app)) as client:
            response = await client.get("/healthz")
            body = await response.json()
            assert response.status == 200
            assert body["status"] == "ok" and body["cache"] == "ok" and body["database"] == "ok"
    nowhere = AsyncCacheClient(tmp_path / "none.sock", None, direct=False, timeout=0.2)
    try:
        app = create_app(WebConfig(), demo_engine, cache=nowhere)
        async with TestClient(TestServer(app)) as client:
            response = await client.get("/healthz")
            body = await response.json()
            assert response.status == 200 and body["status"] == "degraded"
            assert body["cache"].startswith("down")
            assert response.headers["Cache-Control"] == "no-store"
    finally:
        await nowhere.aclose()
