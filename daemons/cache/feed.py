"""The write feed: what ``sleigh-cached`` publishes after each commit (sans-IO).

One ZeroMQ message per commit group, a single frame holding a msgpack array::

    +---------+----------+---------+-------------------------------------+
    | version | origin   | seq     | writes                              |
    | int (1) | str      | int     | array of [kind, key, value, expiry] |
    +---------+----------+---------+-------------------------------------+

    kind    1 set     key, value (bytes), expiry
            2 delete  key, value nil, expiry 0
            3 expire  key, value nil, expiry (0: no expiry any more)
            4 flush   key b"", value nil, expiry 0
    expiry  absolute, milliseconds since the Unix epoch (0: never)

``origin`` names the publishing host; ``seq`` counts messages from 1 for
each start of the daemon, so a subscriber that sees it jump knows that the
publisher dropped messages it could not queue (``cache.publish_hwm``).
Only committed writes of local clients appear, in commit order: a write
that changed nothing (``SET NX`` on a present key, ``EXPIRE`` of a missing
one, a refused write) is left out, and so is a write marked not to be
published (``SET ... LOCAL``, or any write on a connection that said
``CLIENT REPLICATED ON``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import msgpack

from .ops import Delete, Expire, Op, Set

VERSION = 1
SET, DELETE, EXPIRE, FLUSH = 1, 2, 3, 4
KINDS = (SET, DELETE, EXPIRE, FLUSH)


class FeedError(ValueError):
    """A message that is not a valid feed message."""


class Write(NamedTuple):
    """One published write."""

    kind: int
    key: bytes
    value: bytes | None
    expires_ms: int


class Message(NamedTuple):
    origin: str
    seq: int
    writes: list[Write]


def writes_of(
    ops: Sequence[Op], results: Sequence[object], expiry_of: Callable[[bytes], int | None]
) -> list[list[object]]:
    """The feed entries for a committed group (see the module's docstring).

    :param expiry_of: the committed expiry of a key (``None``: absent), for a
        ``SET ... KEEPTTL`` whose expiry the store chose.
    """
    out: list[list[object]] = []
    for op, result in zip(ops, results, strict=True):
        if not op.publish:
            continue
        kind = type(op)
        if kind is Set:
            if result is True:
                _add_set(out, op, expiry_of)  # type: ignore[arg-type]
        elif kind is Delete:
            out.extend([DELETE, key, None, 0] for key in op.keys)  # type: ignore[union-attr]
        elif kind is Expire:
            if result is True:
                out.append([EXPIRE, op.key, None, op.expires_ms])  # type: ignore[union-attr]
        elif result is True:
            out.append([FLUSH, b"", None, 0])
    return out


def _add_set(out: list[list[object]], op: Set, expiry_of: Callable[[bytes], int | None]) -> None:
    expires: int | None = op.expires_ms
    if op.keep_ttl:
        expires = expiry_of(op.key)
        if expires is None:  # a later write of the group removed it
            return
    out.append([SET, op.key, op.value, expires])


def encode(origin: str, seq: int, writes: list[list[object]]) -> bytes:
    """One feed message."""
    return msgpack.packb([VERSION, origin, seq, writes], use_bin_type=True)  # type: ignore[no-any-return]


def decode(frame: bytes) -> Message:
    """Parse one feed message.

    :raises FeedError: if *frame* is not one (nothing is half-parsed).
    """
    try:
        raw = msgpack.unpackb(frame, raw=False, use_list=True)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise FeedError(f"not msgpack: {exc}") from None
    if not (isinstance(raw, list) and len(raw) == 4 and raw[0] == VERSION):
        raise FeedError("not a version 1 feed message")
    _, origin, seq, entries = raw
    if not (isinstance(origin, str) and isinstance(seq, int) and isinstance(entries, list)):
        raise FeedError("bad feed header")
    writes: list[Write] = []
    append = writes.append
    for entry in entries:  # inline, not a call per write: it runs for every replicated write
        if type(entry) is not list or len(entry) != 4:
            raise FeedError("a feed write is [kind, key, value, expiry]")
        kind, key, value, expires = entry
        if type(key) is not bytes or type(expires) is not int or expires < 0:
            raise FeedError("bad feed write")
        if kind == SET:
            if type(value) is not bytes:
                raise FeedError("a feed SET carries a value")
        elif kind not in KINDS or value is not None:
            raise FeedError("bad feed write")
        append(Write(kind, key, value, expires))
    return Message(origin, seq, writes)


__all__ = [
    "DELETE",
    "EXPIRE",
    "FLUSH",
    "SET",
    "FeedError",
    "Message",
    "Write",
    "decode",
    "encode",
    "writes_of",
]
