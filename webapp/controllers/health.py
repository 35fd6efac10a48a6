"""``/healthz``: can this worker serve? For load balancers and ``sleigh status``.

The database is required: without it the answer is ``503`` and the
balancer sends shoppers elsewhere. Every daemon the worker uses is
checked too (each registered in :data:`~sleigh.webapp.keys.HEALTH` by the
part of the app that uses it; a probe that raises or answers ``False``
means down); one that does not answer makes the worker
``degraded`` (still ``200``: the shop runs without it, more slowly or
without that feature), and the body says which.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from aiohttp import web

from ..keys import ENGINE, HEALTH

routes = web.RouteTableDef()

#: Longest wait for any one check.
TIMEOUT = 2.0


async def _check(name: str, probe: Callable[[], Awaitable[object]]) -> tuple[str, str]:
    try:
        async with asyncio.timeout(TIMEOUT):
            answer = await probe()
    except Exception as exc:  # whatever stops a check is what the balancer should see
        return name, f"down: {type(exc).__name__}: {exc}"[:200]
    return name, "down: no answer" if answer is False else "ok"


async def _database(request: web.Request) -> None:
    async with request.app[ENGINE].connect() as conn:
        await conn.execute(sa.text("SELECT 1"))


@routes.get("/healthz", name="healthz")
async def healthz(request: web.Request) -> web.Response:
    checks = [("database", lambda: _database(request)), *request.app[HEALTH].items()]
    results = dict(await asyncio.gather(*(_check(name, probe) for name, probe in checks)))
    if results["database"] != "ok":
        status, code = "unhealthy", 503
    elif any(value != "ok" for value in results.values()):
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    return web.json_response(
        {"status": status, **results, "pid": os.getpid()},
        status=code,
        headers={"Cache-Control": "no-store"},
    )
