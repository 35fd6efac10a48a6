"""The log aiohttp's server writes to in a worker: a client's malformed HTTP on one line.

aiohttp logs every request it cannot parse (a header line over 8 KiB, a bad
header, a body shorter than its Content-Length...) at ERROR with a
traceback, under ``aiohttp.server``. Such a request is the client's error,
not the worker's, and a stream of them from the internet would bury the log
in tracebacks. Here each is one INFO line naming the client and what was
wrong (the access log has its 400 too); every other exception aiohttp logs
(a handler's bug) keeps its traceback at ERROR.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, cast

from aiohttp.http_exceptions import HttpProcessingError

__all__ = ["server_log"]

#: The most of a malformed request's description that goes into the line.
_SHOWN = 200


class _ServerLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(exc, HttpProcessingError):
            client = args[0] if args else "-"
            self.info("malformed request from %s: %s", client or "-", _one_line(exc))
            return
        super().exception(msg, *args, exc_info=exc_info, **kwargs)


def _one_line(exc: HttpProcessingError) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc.message}".split())
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def server_log() -> logging.Logger:
    """The logger to give ``web.AppRunner`` (``logger=``) for a worker."""
    return cast(logging.Logger, _ServerLog(logging.getLogger("aiohttp.server"), {}))
