"""``/healthz``: is this worker alive and can it reach the database?"""

from __future__ import annotations

import os

import sqlalchemy as sa
from aiohttp import web

from ..keys import ENGINE

routes = web.RouteTableDef()


@routes.get("/healthz", name="healthz")
async def healthz(request: web.Request) -> web.Response:
    try:
        async with request.app[ENGINE].connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any failure to reach the database means unhealthy
        return web.json_response(
            {"status": "unhealthy", "database": type(exc).__name__, "pid": os.getpid()},
            status=503,
            headers={"Cache-Control": "no-store"},
        )
    return web.json_response(
        {"status": "ok", "database": "ok", "pid": os.getpid()},
        headers={"Cache-Control": "no-store"},
    )
