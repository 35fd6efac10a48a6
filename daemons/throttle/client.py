"""Clients of ``sleigh-throttled``: blocking :class:`ThrottleClient`, :class:`AsyncThrottleClient`.

Both spread keys over one or more daemons by a consistent hash
(:class:`Ring`), so adding a daemon moves only its share of the keys. A
request whose keys all live on one daemon is one round trip and atomic
(all keys admitted, or none charged). Keys on several daemons are asked
first (PEEK, nothing charged) and then charged on each (CHECK): all or
nothing except for a race between the two steps.

Every call waits at most ``timeout`` seconds and raises
:class:`~.errors.ClientError` otherwise; callers fail open or closed.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import protocol as p
from .aclient import AsyncThrottleClient
from .errors import ClientError, ProtocolError
from .replies import Reply, checked_body, combine, costs_of, decode_decision
from .ring import Address, Ring, addresses_from, make_key, parse_address

__all__ = [
    "Address",
    "AsyncThrottleClient",
    "Reply",
    "Ring",
    "ThrottleClient",
    "addresses_from",
    "combine",
    "decode_decision",
    "make_key",
    "parse_address",
]


class _SyncConn:
    def __init__(self, address: Address, timeout: float) -> None:
        self.address = address
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.parser = p.ReplyParser()
        self.next_id = 0

    def call(self, op: int, keys: list[bytes], costs: list[int] | None = None) -> bytes:
        try:
            return self._call(op, keys, costs)
        except (OSError, ProtocolError) as exc:
            self.close()
            raise ClientError(f"throttle daemon at {self.address}: {exc or 'timed out'}") from None

    def _call(self, op: int, keys: list[bytes], costs: list[int] | None) -> bytes:
        if self.sock is None:
            family = socket.AF_UNIX if isinstance(self.address, Path) else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(str(self.address) if isinstance(self.address, Path) else self.address)
            except OSError:
                sock.close()
                raise
            self.sock, self.parser = sock, p.ReplyParser()
        self.next_id = (self.next_id + 1) & 0xFFFFFFFF
        self.sock.sendall(p.encode_request(op, self.next_id, keys, costs))
        while True:
            data = self.sock.recv(65536)
            if not data:
                raise ProtocolError("connection closed by the daemon")
            for status, rid, body in self.parser.feed(data):
                if rid == self.next_id:
                    return checked_body(status, body)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class ThrottleClient:
    """A blocking client over one or more daemons (see the module docstring)."""

    def __init__(self, addresses: Sequence[Address], timeout: float = 0.005) -> None:
        if not addresses:
            raise ClientError("no throttle daemon given")
        self.conns = [_SyncConn(address, timeout) for address in addresses]
        self.ring = Ring(len(self.conns))

    def check(self, keys: Sequence[bytes], costs: Sequence[int] | None = None) -> Reply:
        """Admit (charging every key) or deny (charging none)."""
        keys, costs = list(keys), costs_of(keys, costs)
        groups = self.ring.split(keys)
        if len(groups) == 1:
            node = next(iter(groups))
            return decode_decision(self.conns[node].call(p.CHECK, keys, costs))
        asked = self._each(p.PEEK, keys, costs, groups)
        if not asked.allowed:
            return asked
        return self._each(p.CHECK, keys, costs, groups)

    def _each(
        self, op: int, keys: list[bytes], costs: list[int], groups: dict[int, list[int]]
    ) -> Reply:
        parts = []
        for node, idx in groups.items():
            body = self.conns[node].call(op, [keys[i] for i in idx], [costs[i] for i in idx])
            parts.append((decode_decision(body), idx))
        return combine(parts)

    def peek(self, keys: Sequence[bytes], costs: Sequence[int] | None = None) -> Reply:
        """What :meth:`check` would answer, changing nothing."""
        keys, costs = list(keys), costs_of(keys, costs)
        return self._each(p.PEEK, keys, costs, self.ring.split(keys))

    def charge(self, keys: Sequence[bytes], costs: Sequence[int]) -> Reply:
        """Charge after the fact (CPU time), whatever the state."""
        keys, costs = list(keys), list(costs)
        return self._each(p.CHARGE, keys, costs, self.ring.split(keys))

    def show(self, key: bytes) -> dict[str, Any]:
        """The state of *key* as the daemon sees it."""
        body = self.conns[self.ring.node(key)].call(p.SHOW, [key])
        result: dict[str, Any] = json.loads(body)
        return result

    def reset(self, key: bytes) -> bool:
        """Forget *key*; whether it had a state."""
        return self.conns[self.ring.node(key)].call(p.RESET, [key]) == b"\x01"

    def stats(self, node: int = 0) -> dict[str, Any]:
        """The counters of daemon number *node*."""
        result: dict[str, Any] = json.loads(self.conns[node].call(p.STATS, []))
        return result

    def ping(self, node: int = 0) -> None:
        self.conns[node].call(p.PING, [])

    def close(self) -> None:
        for conn in self.conns:
            conn.close()

    def __enter__(self) -> ThrottleClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
