"""Middleware: a request id on every request, and friendly error pages.

An unexpected exception is logged once, with its traceback and the request
id; the shopper sees a page naming that id and nothing of the internals.
"""

from __future__ import annotations

import itertools
import logging
import os
import re

from aiohttp import web
from aiohttp.typedefs import Handler

from .keys import VIEWS
from .models.freshness import collecting
from .views import REQUEST_ID

log = logging.getLogger("sleigh.web")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class _RequestIds:
    """Request ids made here: a random 64-bit prefix per process, then a counter.

    Unique across workers and hosts, which is all a request id is for (it names
    a request in the logs and on an error page; it is no secret). ``os.urandom``
    per request was a ``getrandom`` system call on every page.
    """

    def __init__(self) -> None:
        self.renew()
        os.register_at_fork(after_in_child=self.renew)

    def renew(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count(1)

    def next(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


_ids = _RequestIds()
_MESSAGES = {
    400: "We could not understand that request.",
    404: "We looked everywhere, but that page is not here.",
    405: "That is not something this page can do.",
    413: "That request was too large.",
}


@web.middleware
async def request_id(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Take the proxy's ``X-Request-Id`` if it is sane, else make one; echo it back."""
    given = request.headers.get("X-Request-Id", "")
    rid = given if _REQUEST_ID.fullmatch(given) else _ids.next()
    request[REQUEST_ID] = rid
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers["X-Request-Id"] = rid
        raise
    response.headers["X-Request-Id"] = rid
    return response


@web.middleware
async def freshness(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Collect the TTLs of the data the request loads (for the page's cache headers)."""
    with collecting():
        return await handler(request)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn HTTP errors and crashes into pages; log crashes with the request id."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.status == 429:
            raise
        detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else ""
        return _page(request, exc.status, _MESSAGES.get(exc.status, exc.reason), detail)
    except Exception:
        log.exception(
            "unhandled error in %s %s [request %s]",
            request.method,
            request.path,
            request.get(REQUEST_ID, "-"),
            extra={"request_id": request.get(REQUEST_ID, "")},
        )
        return _page(request, 500, "Something went wrong on our side.", "")


def _page(request: web.Request, status: int, message: str, detail: str) -> web.Response:
    response = request.app[VIEWS].render(
        request,
        "error.mako",
        code=status,
        status=status,
        title="Sorry",
        message=message,
        detail=detail,
    )
    response.headers["X-Request-Id"] = request.get(REQUEST_ID, "")
    return response
