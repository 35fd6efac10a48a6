"""What the throttle middleware asks ``sleigh-throttled`` about one request: its keys
(their kinds name rules; a kind without a rule is left out), one cost per key, the key
charged with its CPU time, and its route class."""

from __future__ import annotations

from typing import NamedTuple

from aiohttp import web

from ..daemons.throttle.client import make_key
from ..daemons.throttle.config import ThrottleConfig
from ..daemons.throttle.errors import ThrottleError
from ..daemons.throttle.protocol import CHECK, request_body

_ASKS_MAX = 10_000
_ASK_VALUE_MAX = 128


class Ask(NamedTuple):
    """What to ask the daemon about one request."""

    keys: list[bytes]
    #: One per key: 1, or 0 for the ``cpu:`` key (denied only while in CPU debt).
    costs: list[int]
    #: The key charged with the request's CPU time, if its kind has a rule.
    cpu: bytes | None
    #: The route class of the request's path, if any.
    route: str | None
    #: The CHECK of *keys* and *costs*, encoded once (the frame's body).
    body: bytes


def parse_routes(text: str) -> list[tuple[str, str]]:
    """``search=/search,login=/account/signin`` → ``[(prefix, class)]``, longest prefix first.

    :raises ThrottleError: for an entry that is not ``CLASS=/prefix``.
    """
    routes = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, prefix = item.partition("=")
        if not sep or not name.strip() or not prefix.strip().startswith("/"):
            raise ThrottleError(f"throttle.routes: expected CLASS=/prefix, got {item!r}")
        routes.append((prefix.strip(), name.strip()))
    return sorted(routes, key=lambda route: -len(route[0]))


class Asks:
    """Works out a request's :class:`Ask`, once per address, session and route class
    (while the cache has room)."""

    def __init__(self, cfg: ThrottleConfig, kinds: frozenset[str]) -> None:
        self.ip_header = cfg.client_ip_header
        self.session_cookie = cfg.session_cookie
        self.kinds = kinds
        self.routes = parse_routes(cfg.routes)
        self.cache: dict[tuple[str, str | None, str | None], Ask] = {}

    def ask_for(self, request: web.Request) -> Ask:
        """The request's keys, costs, ``cpu:`` key and route class (worked out once per
        address, session and route class, while the cache has room)."""
        header = self.ip_header
        ip = (request.headers.get(header) if header else None) or request.remote or "unknown"
        path, route = request.path, None
        for prefix, name in self.routes:
            if path.startswith(prefix):
                route = name
                break
        session = request.cookies.get(self.session_cookie) or None
        ident = (ip, session, route)
        ask = self.cache.get(ident)
        if ask is None:
            ask = self._make_ask(ip, session, route)
            if len(ip) + len(session or "") <= _ASK_VALUE_MAX:
                if len(self.cache) >= _ASKS_MAX:
                    self.cache.clear()
                self.cache[ident] = ask
        return ask

    def _make_ask(self, ip: str, session: str | None, route: str | None) -> Ask:
        wanted = [("ip", ip), ("cpu", ip)]
        if session:
            wanted.append(("session", session))
        if route is not None:
            wanted.append((route, ip))
        keys = [make_key(kind, value) for kind, value in wanted if kind in self.kinds]
        costs = [0 if key.startswith(b"cpu:") else 1 for key in keys]
        cpu = next((key for key in keys if key.startswith(b"cpu:")), None)
        return Ask(keys, costs, cpu, route, request_body(CHECK, keys, costs))
