"""What the throttle middleware answers with and counts: ``429`` and ``503`` pages
(JSON for a client that asks for JSON), and its counters in the worker's ``/metrics``."""

from __future__ import annotations

import math
from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from .keys import VIEWS


def wants_json(request: web.Request) -> bool:
    """Whether the client asked for JSON rather than a page."""
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


class Decisions(Collector):
    """Decisions by (source, result): plain numbers the middleware adds to on every
    request (the event loop is one thread), made a metric family only when scraped; a
    labelled ``Counter.inc`` takes a lock each time (0.55% of a warm product page)."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "sleigh_throttle_decisions",
            "Throttle decisions by where they were made and their outcome",
            labels=["source", "result"],
        )
        for (source, result), count in sorted(self.counts.items()):
            family.add_metric([source, result], count)
        yield family


class Metrics:
    """The middleware's counters in the worker's ``/metrics`` registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.decisions = Decisions()
        registry.register(self.decisions)
        self.fail_open = Counter(
            "sleigh_throttle_fail_open",
            "Requests decided without the daemon (unreachable or timed out)",
            registry=registry,
        )
        self.late = Counter(
            "sleigh_throttle_late",
            "Answers from the throttle daemon that came after throttle.timeout (the request"
            " was decided in process)",
            registry=registry,
        )
        self.errors = Counter(
            "sleigh_throttle_errors", "Failed round trips to the throttle daemon", registry=registry
        )
        self.cached = Gauge(
            "sleigh_throttle_cached_denials", "Denials held in this worker", registry=registry
        )

    def decision(self, source: str, result: str) -> None:
        """Count one decision made by *source* (``daemon``, ``fallback``, ``cache``)."""
        counts = self.decisions.counts
        key = (source, result)
        counts[key] = counts.get(key, 0) + 1


def too_many(request: web.Request, retry: float) -> web.Response:
    """``429`` with ``Retry-After`` (whole seconds, rounded up): a page, or JSON if asked."""
    seconds = max(1, math.ceil(retry))
    return _refusal(
        request,
        429,
        "too_many_requests",
        seconds,
        title="Please slow down",
        message="You are going a little fast for us.",
        detail=f"Please wait {seconds} second{'s' if seconds != 1 else ''} and try again.",
    )


def unavailable(request: web.Request, route: str | None) -> web.Response:
    """``503`` for a route class that fails closed while the throttle cannot be asked."""
    return _refusal(
        request,
        503,
        "unavailable",
        5,
        title="Please try again shortly",
        message="Signing in is paused for a moment.",
        detail=f"We cannot check {route} requests safely right now; please try again shortly.",
    )


def _refusal(
    request: web.Request,
    status: int,
    error: str,
    seconds: int,
    *,
    title: str,
    message: str,
    detail: str,
) -> web.Response:
    headers = {"Retry-After": str(seconds), "Cache-Control": "private, no-store"}
    if wants_json(request):
        return web.json_response(
            {"error": error, "retry_after": seconds}, status=status, headers=headers
        )
    response = request.app[VIEWS].render(
        request,
        "error.mako",
        status=status,
        code=status,
        title=title,
        message=message,
        detail=detail,
    )
    response.headers.update(headers)
    return response
