"""What the request metrics and the navigation cost a request, in CPU µs.

The storefront's own middlewares are called in-process, as aiohttp calls
them, on a real request resolved by a real router (the product route), with
a handler that returns a prepared response at once, so the figures are the
middlewares' own cost. Rows, each the best of ``--repeat`` runs of
``--count`` requests, CPU time of this thread (``time.thread_time``):

1. the handler alone (the yardstick: "added" is a row's figure minus it,
   the whole cost of one more middleware, its call included);
2. the metrics middleware (:class:`sleigh.webapp.metrics.Requests`);
3. the navigation middleware (:class:`sleigh.webapp.navigation.Navigation`),
   its tree held;
4. both, as the app chains them;
5. what a middleware of stock ``prometheus_client`` metrics with children
   bound once per route would cost (``Counter.inc`` + ``Histogram.observe``):
   the design the metrics middleware was compared with.

Run: ``.venv/bin/python scripts/bench_metrics.py [--count N] [--repeat R]``
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Sequence
from functools import partial
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Protocol

from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry, Counter, Histogram

from sleigh.webapp import metrics
from sleigh.webapp.db.config import DatabaseConfig
from sleigh.webapp.db.engine import create_engine
from sleigh.webapp.db.migrate import upgrade
from sleigh.webapp.demo.catalog import load_demo
from sleigh.webapp.models.catalog import Catalog
from sleigh.webapp.navigation import Navigation


class Middleware(Protocol):
    """A new-style aiohttp middleware (aiohttp binds its handler by keyword)."""

    def __call__(self, request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]: ...


ROW_BARE = "handler alone"
ROW_METRICS = "metrics middleware"
ROW_NAV = "navigation middleware"
ROW_BOTH = "metrics + navigation"
ROW_STOCK = "prometheus_client children"


async def product_request() -> web.Request:
    """A GET of a product page, matched by a real router to its route."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="")

    app = web.Application()
    app.router.add_get(r"/p/{id:\d+}", page, name="product")
    request = make_mocked_request("GET", "/p/42", app=app)
    request._match_info = await app.router.resolve(request)  # as the server does
    return request


def stock_middleware() -> Middleware:
    """Counters of ``prometheus_client``, children bound once for the route."""
    registry = CollectorRegistry()
    requests = Counter("r", "r", ["route", "method", "status"], registry=registry)
    latency = Histogram("l", "l", ["route"], registry=registry, buckets=metrics.BUCKETS)
    children: dict[object, tuple[Counter, Histogram]] = {}

    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        response = await handler(request)
        resource = request.match_info.route.resource
        bound = children.get(resource)
        if bound is None:
            bound = children[resource] = (
                requests.labels("product", "GET", "2xx"),
                latency.labels("product"),
            )
        bound[0].inc()
        bound[1].observe(time.perf_counter() - started)
        return response

    return middleware


def chain(middlewares: Sequence[Middleware], handler: Handler) -> Handler:
    """*handler* behind *middlewares*, bound as aiohttp binds them (``partial``)."""
    for middleware in reversed(middlewares):
        handler = partial(middleware, handler=handler)
    return handler


async def measure(handler: Handler, request: web.Request, count: int, repeat: int) -> float:
    """CPU µs per request: the best of *repeat* runs of *count*."""
    best = float("inf")
    for _ in range(repeat):
        started = time.thread_time()
        for _ in range(count):
            await handler(request)
        best = min(best, time.thread_time() - started)
    return best / count * 1e6


async def run(count: int, repeat: int, home: Path) -> dict[str, float]:
    request = await product_request()
    answer = web.Response(text="")

    async def handler(request: web.Request) -> web.StreamResponse:
        return answer

    engine = create_engine(DatabaseConfig(), home)
    try:
        await upgrade(engine)
        await load_demo(engine, products=10)
        navigation = Navigation(Catalog(engine), ttl=3600)
        if await navigation.current() is None:
            raise RuntimeError("the navigation could not load the demo catalog's tree")
        requests = metrics.Requests()
        rows: dict[str, list[Middleware]] = {
            ROW_BARE: [],
            ROW_METRICS: [requests.middleware],
            ROW_NAV: [navigation.middleware],
            ROW_BOTH: [requests.middleware, navigation.middleware],
            ROW_STOCK: [stock_middleware()],
        }
        return {
            name: await measure(chain(middlewares, handler), request, count, repeat)
            for name, middlewares in rows.items()
        }
    finally:
        await engine.dispose()


def print_table(figures: dict[str, float]) -> None:
    base = figures[ROW_BARE]
    own = figures[ROW_METRICS] - base
    print(f"{'row':<32} {'CPU µs/request':>15} {'added µs':>9} {'x metrics':>10}")
    for name, micros in figures.items():
        added = micros - base
        versus = f"{added / own:.2f}" if name != ROW_BARE and own > 0 else "-"
        print(f"{name:<32} {micros:>15.3f} {added:>9.3f} {versus:>10}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200_000, help="requests per run")
    parser.add_argument("--repeat", type=int, default=7, help="runs per row (the best is kept)")
    args = parser.parse_args(argv)
    if args.count < 1 or args.repeat < 1:
        parser.error("--count and --repeat must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"python {sys.version.split()[0]}; {args.count} requests x {args.repeat} runs per row")
    with TemporaryDirectory(prefix="bench-metrics-") as home:
        figures = asyncio.run(run(args.count, args.repeat, Path(home)))
    print_table(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
