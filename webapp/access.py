"""The access log: one line per request on the ``sleigh.web.access`` logger.

``client "METHOD /path?query HTTP/1.1" status bytes seconds request-id``,
with the request id, status and time also as fields of the record (the JSON
log format shows them as keys). Written for the hot path: aiohttp's
configurable access logger parses its format into a list of callables and
builds two dicts per request; this one formats one fixed line, and when the
line would only reach the handler ``setup_logging`` installed, writes it
there without making a ``LogRecord`` (4% of a warm product page's samples
went to making and handling the record).
"""

from __future__ import annotations

import logging

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from ..daemons.runtime.logs import direct

__all__ = ["FORMAT", "AccessLogger"]

#: What a line holds, for the documentation and for ``--help`` readers.
FORMAT = 'client "request line" status bytes seconds request-id'


class AccessLogger(AbstractAccessLogger):
    """Logs each request at INFO (nothing is built when INFO is off).

    The client is the peer's address, or with :meth:`trusting` the value of a
    header a proxy in front sets (nginx's ``X-Real-IP``): behind a proxy the peer
    is always the proxy.
    """

    __slots__ = ()

    #: the header holding the shopper's address (empty: the peer's address)
    client_header = ""

    @classmethod
    def trusting(cls, header: str) -> type[AccessLogger]:
        """The access logger that takes the client's address from *header* (the one
        ``throttle.client_ip_header`` names; empty: this class)."""
        if not header:
            return cls
        return type(cls.__name__, (cls,), {"__slots__": (), "client_header": header})

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        version = request.version
        rid = response.headers.get("X-Request-Id", "-")
        header = self.client_header
        client = (request.headers.get(header) if header else None) or request.remote or "-"
        message = (
            f'{client} "{request.method} {request.path_qs} HTTP/{version.major}.'
            f'{version.minor}" {response.status} {response.body_length} {time:.6f} {rid}'
        )
        fields: dict[str, object] = {
            "request_id": rid,
            "status": response.status,
            "seconds": round(time, 6),
        }
        handler = direct(self.logger)
        if handler is not None:  # the usual case: the line, with no LogRecord made
            handler.info_line(self.logger.name, message, fields)
        else:
            self.logger.info(message, extra=fields)
