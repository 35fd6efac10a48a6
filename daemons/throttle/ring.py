"""Where a key lives: its name on the wire, the daemons' addresses, the consistent-hash ring."""

from __future__ import annotations

import base64
import bisect
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

from . import protocol as p
from .config import ThrottleConfig
from .errors import ClientError

Address = Path | tuple[str, int]

_VNODES = 64
_PRINTABLE = re.compile(rb"[!-~]+")


def make_key(kind: str, value: str) -> bytes:
    """``KIND:VALUE`` as the daemon takes it; a long or odd value becomes its hash."""
    key = f"{kind}:{value}".encode("utf-8", "surrogateescape")
    if len(key) <= p.KEY_MAX and _PRINTABLE.fullmatch(key):
        return key
    digest = hashlib.blake2b(value.encode("utf-8", "surrogateescape"), digest_size=16).digest()
    return f"{kind}:#{base64.urlsafe_b64encode(digest).decode().rstrip('=')}".encode()


def parse_address(text: str) -> Address:
    """``unix:/run/x.sock`` or ``/run/x.sock`` → a path; ``host:port`` → a TCP address."""
    text = text.strip()
    if text.startswith("unix:"):
        return Path(text[5:])
    if text.startswith("/") or ":" not in text:
        return Path(text)
    host, _, port = text.rpartition(":")
    if not port.isdigit():
        raise ClientError(f"bad throttle address {text!r}: use unix:PATH or HOST:PORT")
    return (host.strip("[]"), int(port))


def addresses_from(cfg: ThrottleConfig, home: Path) -> list[Address]:
    """The daemons named by ``throttle.servers`` (empty: this home's socket)."""
    names = [n for n in cfg.servers.split(",") if n.strip()]
    return [parse_address(n) for n in names] if names else [cfg.socket_path(home)]


class Ring:
    """A consistent-hash ring: each daemon owns the arcs after its virtual nodes."""

    def __init__(self, count: int) -> None:
        points = []
        for node in range(count):
            for vnode in range(_VNODES):
                points.append((_point(f"{node}/{vnode}".encode()), node))
        points.sort()
        self.points = [point for point, _ in points]
        self.nodes = [node for _, node in points]
        self.count = count

    def node(self, key: bytes) -> int:
        """The daemon that owns *key*."""
        if self.count == 1:
            return 0
        index = bisect.bisect(self.points, _point(key)) % len(self.points)
        return self.nodes[index]

    def only_node(self, keys: Sequence[bytes]) -> int | None:
        """The daemon that owns every one of *keys* (``None``: they are spread)."""
        nodes = {self.node(key) for key in keys}
        return nodes.pop() if len(nodes) == 1 else None

    def split(self, keys: Sequence[bytes]) -> dict[int, list[int]]:
        """Indices of *keys* grouped by daemon."""
        groups: dict[int, list[int]] = {}
        for index, key in enumerate(keys):
            groups.setdefault(self.node(key), []).append(index)
        return groups


def _point(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")
