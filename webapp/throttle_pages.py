"""What the throttle middleware answers with and counts: ``429`` and ``503`` pages
(JSON for a client that asks for JSON), and its counters in the worker's ``/metrics``."""

from __future__ import annotations

import math

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge

from .keys import VIEWS


def wants_json(request: web.Request) -> bool:
    """Whether the client asked for JSON rather than a page."""
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


class Metrics:
    """The middleware's counters in the worker's ``/metrics`` registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.decisions = Counter(
            "sleigh_throttle_decisions",
            "Throttle decisions by where they were made and their outcome",
            ["source", "result"],
            registry=registry,
        )
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
        self._children: dict[tuple[str, str], Counter] = {}

    def decision(self, source: str, result: str) -> Counter:
        """The counter of one (source, result) pair (looked up once: labels() is slow)."""
        child = self._children.get((source, result))
        if child is None:
            child = self._children[(source, result)] = self.decisions.labels(source, result)
        return child


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
