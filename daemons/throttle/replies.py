"""What the clients make of the daemon's replies: a decision, and one decision from the
decisions of several daemons (keys sharded over them)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from . import protocol as p
from .errors import ClientError, ServerError


class Reply(NamedTuple):
    allowed: bool
    #: Seconds until the same request would be admitted (0.0 when allowed).
    retry_after: float
    remaining: int
    #: Index (in the request's keys) of the key that denied, or -1.
    limiting: int


def decode_decision(body: bytes) -> Reply:
    """A CHECK/PEEK/CHARGE reply body."""
    try:
        allowed, limiting, remaining, retry = p.DECISION.unpack(body)
    except Exception as exc:
        raise ClientError(f"malformed decision from the throttle daemon: {exc}") from None
    return Reply(bool(allowed), retry / 1e9, remaining, -1 if limiting == p.NO_KEY else limiting)


def combine(parts: Iterable[tuple[Reply, list[int]]]) -> Reply:
    """One reply from the replies of several daemons (indices map back to the request)."""
    allowed, retry, remaining, limiting = True, 0.0, 1 << 31, -1
    for reply, indices in parts:
        remaining = min(remaining, reply.remaining)
        if not reply.allowed:
            allowed = False
            if reply.retry_after >= retry:
                retry, limiting = reply.retry_after, indices[max(reply.limiting, 0)]
    return Reply(allowed, retry, 0 if not allowed else remaining, limiting)


def checked_body(status: int, body: bytes) -> bytes:
    if status != p.OK:
        raise ServerError(body.decode("utf-8", "replace"))
    return body


def costs_of(keys: Sequence[bytes], costs: Sequence[int] | None) -> list[int]:
    return [1] * len(keys) if costs is None else list(costs)
