"""How fresh a page's data must be: the shortest TTL of the objects it used.

Models note the TTL of every object they load (:func:`note`); the web tier
collects the notes of one request (:func:`collecting`) and makes that the
page's cache lifetime, so no controller sets it by hand. The collector
lives in a context variable: it follows the request's task, and the tasks
the request starts.
"""

from __future__ import annotations

import math
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class Freshness:
    """The shortest TTL noted so far (infinite: no data loaded)."""

    ttl: float = math.inf

    def note(self, ttl: float) -> None:
        if ttl < self.ttl:
            self.ttl = ttl


_CURRENT: ContextVar[Freshness | None] = ContextVar("sleigh_freshness", default=None)


def note(ttl: float) -> None:
    """Record that the current page shows data that may be *ttl* seconds stale."""
    collector = _CURRENT.get()
    if collector is not None:
        collector.note(ttl)


def current() -> Freshness | None:
    """The collector of the request being served, if any."""
    return _CURRENT.get()


class collecting:  # (lower case: used as a function, ``with collecting() as seen:``)
    """Collect the TTLs noted inside the block (a class, not a generator: it runs on
    every request, and ``contextlib.contextmanager`` costs a generator and two calls)."""

    __slots__ = ("_token", "collector")

    def __init__(self) -> None:
        self.collector = Freshness()

    def __enter__(self) -> Freshness:
        self._token = _CURRENT.set(self.collector)
        return self.collector

    def __exit__(self, *exc: object) -> None:
        _CURRENT.reset(self._token)
