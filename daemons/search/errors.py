"""Errors of the search daemon and its clients.

A :class:`RequestError` carries the code of the error reply the daemon
sends (see :mod:`~sleigh.daemons.search.protocol`); the client turns an
error reply back into the class of its code (:func:`error_for`).
"""

from __future__ import annotations

from ...errors import SleighError

__all__ = [
    "BadRequest",
    "Busy",
    "RequestError",
    "SearchError",
    "SearchUnavailable",
    "error_for",
]


class SearchError(SleighError):
    """Root of every error of the search daemon and its clients."""


class RequestError(SearchError):
    """A request the daemon refuses; ``code`` is the error reply's code."""

    code = "bad_request"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class BadRequest(RequestError):
    """The request is malformed or breaks a limit: fix the request, do not retry it."""


class Busy(RequestError):
    """The daemon is stopping or has no index: another replica may answer."""

    code = "unavailable"


class SearchUnavailable(SearchError):
    """No search daemon answered: every endpoint is down, stopping or timed out.

    Check ``sleigh status`` and the ``[search] endpoints`` setting; the
    storefront shows a "search is unavailable" page meanwhile.
    """


#: Error codes a client retries on another replica.
RETRYABLE = frozenset({"unavailable", "internal"})


def error_for(code: str, message: str) -> RequestError:
    """The exception for an error reply with *code*."""
    if code in RETRYABLE:
        return Busy(message, code)
    return BadRequest(message, code)
