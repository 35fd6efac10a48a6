"""``/metrics``: this worker's counters in the Prometheus text format.

Each worker has its own registry (nothing global) and labels nothing by
worker: a scrape through the shared socket reaches one worker, so scrape
each worker (``sleigh up`` workers log their pid; the ``pid`` gauge says
which one answered), or sum in Prometheus over the ``instance`` label.
"""

from __future__ import annotations

import os

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)


def install(app: web.Application) -> CollectorRegistry:
    """Give *app* a registry and the ``/metrics`` route; the registry."""
    registry = CollectorRegistry(auto_describe=True)
    Gauge("sleigh_web_pid", "Process id of the worker that answered", registry=registry).set(
        os.getpid()
    )
    app[REGISTRY] = registry
    app.router.add_get("/metrics", metrics, name="metrics")
    return registry


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[REGISTRY])
    response = web.Response(body=body, headers={"Cache-Control": "no-store"})
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    response.charset = "utf-8"
    return response
