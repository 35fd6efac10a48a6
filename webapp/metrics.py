"""``/metrics``: this worker's counters in the Prometheus text format.

Each worker has its own registry (nothing global) and labels nothing by
worker: a scrape through the shared socket reaches one worker, so scrape
each worker (``sleigh up`` workers log their pid; the ``pid`` gauge says
which one answered), or sum in Prometheus over the ``instance`` label.

Series (besides the throttle's, see :mod:`.throttle`):

``sleigh_web_requests_total{route,method,status}``
    Requests answered. ``route`` is the name of the matched resource
    (``product``, ``category``…; its URL pattern if it has no name;
    ``unmatched`` for 404s and 405s of no route), never the raw path, so
    the number of series stays bounded; ``status`` is the class (``2xx``).
``sleigh_web_request_duration_seconds{route}``
    A histogram of the time from the first middleware to the response.
``sleigh_web_object_cache_hits_total{kind}``, ``..._misses_total{kind}``
    Objects the models found in the object cache, and did not; ``kind`` is
    the part (``info``, ``price``, ``inv``, ``cat``, ``cart``…, the key
    prefix without its version). The hit ratio is
    ``rate(hits) / (rate(hits) + rate(misses))``.
``sleigh_web_object_cache_errors_total``
    Cache reads and writes that failed (the database answered instead).
``sleigh_web_db_pool_{size,checked_out,checked_in,overflow}``
    The database pool, read when scraped.
``sleigh_web_db_read_connections``, ``..._read_waits_total``, ``..._read_timeouts_total``,
``..._read_retries_total``
    On PostgreSQL: the worker's own connections for the catalog's reads
    (``database.read_connections`` at most), the reads that waited for one
    because all were in use, those that gave up waiting, and those run again
    on a new connection after theirs was lost (a server restart).

The request figures are plain numbers the middleware adds to (the event
loop is one thread) and become metric families only when scraped: a
request costs one ``perf_counter`` pair and a few list updates, no locks
and no label lookups.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from itertools import accumulate
from time import perf_counter

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_urldispatcher import AbstractResource
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from .db.reads import read_connections
from .models.store import Through

REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)

#: Upper bounds (seconds) of the latency buckets; ``+Inf`` is implied.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Methods counted by name; any other is counted as ``other``.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
#: Status class labels by ``status // 100``; index 0 is any status outside 100-599.
_CLASSES = ("other", "1xx", "2xx", "3xx", "4xx", "5xx")
_BOUNDS = [*(repr(b) for b in BUCKETS), "+Inf"]


class RouteFigures:
    """One route's latency buckets (not cumulative), their sum, and answers by method."""

    __slots__ = ("buckets", "by_method", "name", "total")

    def __init__(self, name: str) -> None:
        self.name = name
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.total = 0.0
        #: method -> answers by status class (indexed like ``_CLASSES``)
        self.by_method: dict[str, list[int]] = {}

    def method(self, method: str) -> list[int]:
        """The status-class counts of *method* (``other`` for an unusual one), made once."""
        key = method if method in METHODS else "other"
        counts = self.by_method.get(key)
        if counts is None:
            counts = self.by_method[key] = [0] * len(_CLASSES)
        return counts


class Requests(Collector):
    """The request counters and latency histograms: a middleware and a collector."""

    def __init__(self) -> None:
        self._routes: dict[AbstractResource | None, RouteFigures] = {}

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Time the request and count its answer under its route."""
        started = perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            elapsed = perf_counter() - started
            resource = request.match_info.route.resource
            route = self._routes.get(resource) or self._add(resource)
            route.buckets[bisect_left(BUCKETS, elapsed)] += 1
            route.total += elapsed
            counts = route.by_method.get(request.method) or route.method(request.method)
            kind = status // 100
            counts[kind if 0 < kind < 6 else 0] += 1

    def _add(self, resource: AbstractResource | None) -> RouteFigures:
        name = UNMATCHED if resource is None else resource.name or resource.canonical
        route = self._routes[resource] = RouteFigures(name)
        return route

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "sleigh_web_requests",
            "Requests answered, by route, method and status class",
            labels=["route", "method", "status"],
        )
        latency = HistogramMetricFamily(
            "sleigh_web_request_duration_seconds",
            "Seconds from the first middleware to the response, by route",
            labels=["route"],
        )
        for route in list(self._routes.values()):
            for method, counts in list(route.by_method.items()):
                for kind, count in enumerate(counts):
                    if count:
                        requests.add_metric([route.name, method, _CLASSES[kind]], count)
            cumulative = zip(_BOUNDS, accumulate(route.buckets), strict=True)
            latency.add_metric([route.name], list(cumulative), route.total)
        yield requests
        yield latency


class CacheReads(Collector):
    """Hits and misses of the models' object-cache reads (counted by :class:`Through`)."""

    def __init__(self, throughs: Iterable[Through]) -> None:
        self.throughs = tuple(throughs)

    def collect(self) -> Iterator[Metric]:
        by_kind: dict[str, list[int]] = {}
        for through in self.throughs:
            for kind, (hits, misses) in through.kinds.items():
                tally = by_kind.setdefault(kind, [0, 0])
                tally[0] += hits
                tally[1] += misses
        hit_family = CounterMetricFamily(
            "sleigh_web_object_cache_hits",
            "Objects the models found in the object cache, by part",
            labels=["kind"],
        )
        miss_family = CounterMetricFamily(
            "sleigh_web_object_cache_misses",
            "Objects the models did not find in the object cache (read from the database)",
            labels=["kind"],
        )
        for kind, (hit, miss) in sorted(by_kind.items()):
            hit_family.add_metric([kind], hit)
            miss_family.add_metric([kind], miss)
        yield hit_family
        yield miss_family
        yield CounterMetricFamily(
            "sleigh_web_object_cache_errors",
            "Object cache operations that failed (the database answered instead)",
            value=sum(t.failures for t in self.throughs),
        )


class PoolUse(Collector):
    """The database pool's use, read when scraped (nothing is counted per request)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        pool = self.engine.pool
        if not isinstance(pool, QueuePool):
            return
        figures = (
            ("size", "Connections the pool keeps (pool_size)", pool.size()),
            ("checked_out", "Connections in use now", pool.checkedout()),
            ("checked_in", "Open connections idle in the pool", pool.checkedin()),
            ("overflow", "Connections open beyond pool_size now", max(0, pool.overflow())),
        )
        for name, doc, value in figures:
            yield GaugeMetricFamily(f"sleigh_web_db_pool_{name}", doc, value=value)
        reads = read_connections(self.engine)
        if reads is None:
            return
        yield GaugeMetricFamily(
            "sleigh_web_db_read_connections",
            "Connections open for the catalog's reads (at most database.read_connections)",
            value=reads.open,
        )
        yield CounterMetricFamily(
            "sleigh_web_db_read_waits",
            "Catalog reads that waited for a read connection (all were in use)",
            value=reads.waits,
        )
        yield CounterMetricFamily(
            "sleigh_web_db_read_timeouts",
            "Catalog reads that gave up waiting for a read connection (database.pool_timeout)",
            value=reads.timeouts,
        )
        yield CounterMetricFamily(
            "sleigh_web_db_read_retries",
            "Catalog reads run again on a new connection after theirs was lost",
            value=reads.retries,
        )


def install(
    app: web.Application, requests: Requests, engine: AsyncEngine, throughs: Sequence[Through]
) -> CollectorRegistry:
    """Give *app* a registry with these collectors and the ``/metrics`` route; the registry.

    :param requests: the collector whose middleware the app runs first.
    :param throughs: the models' cache readers whose hits and misses are exported.
    """
    registry = CollectorRegistry(auto_describe=True)
    Gauge("sleigh_web_pid", "Process id of the worker that answered", registry=registry).set(
        os.getpid()
    )
    registry.register(requests)
    registry.register(CacheReads(throughs))
    registry.register(PoolUse(engine))
    app[REGISTRY] = registry
    app.router.add_get("/metrics", metrics, name="metrics")
    return registry


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[REGISTRY])
    response = web.Response(body=body, headers={"Cache-Control": "no-store"})
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    response.charset = "utf-8"
    return response
