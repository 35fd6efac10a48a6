"""The access log: one line per request on the ``sleigh.web.access`` logger.

``client "METHOD /path?query HTTP/1.1" status bytes seconds request-id``,
with the request id, status and time also as fields of the record (the JSON
log format shows them as keys). Written for the hot path: aiohttp's
configurable access logger parses its format into a list of callables and
builds two dicts per request; this one formats one fixed line.
"""

from __future__ import annotations

import logging

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

__all__ = ["FORMAT", "AccessLogger"]

#: What a line holds, for the documentation and for ``--help`` readers.
FORMAT = 'client "request line" status bytes seconds request-id'


class AccessLogger(AbstractAccessLogger):
    """Logs each request at INFO (nothing is built when INFO is off)."""

    __slots__ = ()

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        version = request.version
        rid = response.headers.get("X-Request-Id", "-")
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %d %.6f %s',
            request.remote or "-",
            request.method,
            request.path_qs,
            version.major,
            version.minor,
            response.status,
            response.body_length,
            time,
            rid,
            extra={"request_id": rid, "status": response.status, "seconds": round(time, 6)},
        )
