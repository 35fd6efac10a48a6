"""The replication wire format: signed UDP datagrams, sans-IO.

This module knows bytes and dataclasses, never sockets or clocks: the
caller passes ``now`` (seconds since the epoch) wherever time matters.

Every datagram is one frame: a common header, a body that depends on the
type, and an HMAC-SHA256 tag over everything before it, keyed with the
cluster secret. Integers are big-endian and unsigned::

     0               4       5       6               8              12
    +---------------+-------+-------+---------------+---------------+
    | magic "SLRP"  |version| type  | flags (0)     | cluster id    |
    +---------------+-------+-------+---------------+---------------+
    | sender id (8): random per daemon start, never 0               |
    +---------------------------------------------------------------+  20
    | timestamp (8): ms since the epoch when the datagram was made  |
    +---------------------------------------------------------------+  28
    | body, by type (below)                                         |
    +---------------------------------------------------------------+
    | tag (16): HMAC-SHA256(cluster secret, every byte above)[:16]  |
    +---------------------------------------------------------------+

    DATA (type 1), one fragment of one operation; 75 bytes besides key and value:
        28 sequence (8) | 36 fragment index (4) | 40 fragment count (4)
        | 44 length of the whole value (4) | 48 operation (1): 1 SET, 2 DELETE,
        3 EXPIRE, 4 FLUSH, 5 INVALIDATE | 49 key length (2)
        | 51 expiry (8): ms since the epoch, 0 = none | 59 key | this fragment's part
        of the value
    NAK (type 2), a receiver asks a sender to repeat datagrams:
        target sender id (8) | range count (2) | count x (first sequence (8), last (8))
    HEARTBEAT (type 3), from every member: soon after data (heartbeat_min, or
    twice a steady stream's gap; then doubling) and every heartbeat_interval when idle:
        highest sequence sent (8, 0 = none yet) | lowest sequence still held for repair (8)
        | when the sender started, ms since the epoch (8)
    LEAVE (type 4), a member stops: highest sequence sent (8)

Each DATA datagram has its own sequence number (per sender, from 1); the
fragments of one operation take consecutive numbers, so fragment *i* of
*n* at sequence *s* tells that the operation spans ``s - i`` to
``s - i + n - 1``. Every fragment repeats the key, so a receiver that
misses part of an object still knows which key it lost.

The tag is truncated to 128 bits (as RFC 2104 section 5 and NIST SP 800-107
allow): a forger's chance per attempt is 2**-128, far below anything a LAN
can try, and it saves 16 bytes in every datagram. The timestamp is inside
the tag; a receiver drops datagrams outside its timestamp window and the
engine drops sequences it already delivered, so a captured datagram can
neither be replayed later nor be applied twice.

:func:`decode` checks in this order and raises the first failure, each a
:class:`WireError` subclass with a short ``reason`` the receiver counts:
:class:`Oversized` (over ``max_size``), :class:`Truncated` (shorter than
a header and tag), :class:`BadMagic`, :class:`BadVersion`,
:class:`WrongCluster`, :class:`BadMac`, :class:`Stale`, then
:class:`Malformed` (a well-signed body that does not parse: a bug or a
newer type).
"""

from __future__ import annotations

import enum
import functools
import hashlib
import hmac
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hashlib import _Hash

from .errors import (
    BadMac,
    BadMagic,
    BadVersion,
    Malformed,
    Oversized,
    Stale,
    Truncated,
    WireError,
    WrongCluster,
)

__all__ = [
    "DATA_OVERHEAD",
    "HEADER_SIZE",
    "MAGIC",
    "MAX_SEQUENCE",
    "TAG_SIZE",
    "VERSION",
    "BadMac",
    "BadMagic",
    "BadVersion",
    "CacheOp",
    "Data",
    "Fragment",
    "Frame",
    "FrameType",
    "Heartbeat",
    "Leave",
    "Malformed",
    "Nak",
    "Op",
    "Oversized",
    "Stale",
    "Truncated",
    "WireError",
    "WrongCluster",
    "decode",
    "encode_data",
    "encode_heartbeat",
    "encode_leave",
    "encode_nak",
    "fragment",
    "max_nak_ranges",
    "restamp",
]

MAGIC = b"SLRP"
VERSION = 1
TAG_SIZE = 16
MAX_SEQUENCE = 2**64 - 1

_HEADER = struct.Struct(">4sBBHIQQ")
_DATA = struct.Struct(">QIIIBHQ")
_DATA_FRAME = struct.Struct(">4sBBHIQQ" + "QIIIBHQ")  # the header and the DATA body at once
_NAK = struct.Struct(">QH")
_RANGE = struct.Struct(">QQ")
_HEARTBEAT = struct.Struct(">QQQ")
_LEAVE = struct.Struct(">Q")

HEADER_SIZE = _HEADER.size
#: Bytes of a DATA datagram that are neither key nor value.
DATA_OVERHEAD = HEADER_SIZE + _DATA.size + TAG_SIZE


class FrameType(enum.IntEnum):
    DATA = 1
    NAK = 2
    HEARTBEAT = 3
    LEAVE = 4


class Op(enum.IntEnum):
    """What a replicated write does to the receiving host's cache."""

    SET = 1
    DELETE = 2
    EXPIRE = 3  # set the key's absolute expiry (0: persist)
    FLUSH = 4  # empty the cache
    INVALIDATE = 5  # delete the key: its value was too large to send, or may be wrong


@dataclass(slots=True)
class CacheOp:
    """One cache write, as published by ``sleigh-cached`` and applied by receivers.

    :param expiry_ms: absolute expiry in ms since the epoch, 0 for none.
    :param origin: the sender id the write came from (0: this host).

    Not frozen, for speed (one is made per write); treat it as immutable.
    """

    op: Op
    key: bytes = b""
    value: bytes = b""
    expiry_ms: int = 0
    origin: int = 0


@dataclass(slots=True)
class Data:
    """One DATA fragment; ``chunk`` is its part of the value (offset implied by order).

    Not frozen, for speed (one is made per datagram); treat it as immutable.
    """

    sender: int
    timestamp_ms: int
    sequence: int
    index: int
    count: int
    length: int
    op: Op
    key: bytes
    expiry_ms: int
    chunk: bytes

    @property
    def first(self) -> int:
        """Sequence of the operation's first fragment."""
        return self.sequence - self.index

    @property
    def last(self) -> int:
        """Sequence of the operation's last fragment."""
        return self.sequence - self.index + self.count - 1


@dataclass(frozen=True, slots=True)
class Nak:
    """A request to *target* to repeat the inclusive sequence ``ranges``."""

    sender: int
    timestamp_ms: int
    target: int
    ranges: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """*high*: highest sequence sent (0: none); *low*: lowest still held for repair.

    *started_ms* tells receivers whether the stream began before they did
    (join at the present) or after (every sequence from 1 is theirs).
    """

    sender: int
    timestamp_ms: int
    high: int
    low: int
    started_ms: int


@dataclass(frozen=True, slots=True)
class Leave:
    sender: int
    timestamp_ms: int
    high: int


Frame = Data | Nak | Heartbeat | Leave


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


@functools.lru_cache(maxsize=8)
def _pads(secret: bytes) -> tuple[_Hash, _Hash]:
    """SHA-256 states after HMAC's inner and outer key blocks (RFC 2104), made once per key."""
    key = secret if len(secret) <= 64 else hashlib.sha256(secret).digest()
    key = key.ljust(64, b"\0")
    return hashlib.sha256(key.translate(_IPAD)), hashlib.sha256(key.translate(_OPAD))


def _tag(secret: bytes, data: bytes | memoryview) -> bytes:
    """HMAC-SHA256(secret, data) truncated to ``TAG_SIZE``.

    Equal to ``hmac.digest(secret, data, "sha256")[:TAG_SIZE]``, at about half its cost
    for a datagram: the key blocks are hashed once per secret, not once per datagram.
    """
    inner, outer = _pads(secret)
    h = inner.copy()
    h.update(data)
    o = outer.copy()
    o.update(h.digest())
    return o.digest()[:TAG_SIZE]


def _seal(secret: bytes, head_and_body: bytes) -> bytes:
    return head_and_body + _tag(secret, head_and_body)


def _header(kind: FrameType, cluster: int, sender: int, now: float) -> bytes:
    return _HEADER.pack(MAGIC, VERSION, kind, 0, cluster, sender, int(now * 1000))


def encode_data(
    secret: bytes, cluster: int, sender: int, now: float, frag: Data | Fragment
) -> bytes:
    """One signed DATA datagram for *frag*, stamped with *now* (repairs are re-stamped)."""
    head = _DATA_FRAME.pack(
        MAGIC,
        VERSION,
        FrameType.DATA,
        0,
        cluster,
        sender,
        int(now * 1000),
        frag.sequence,
        frag.index,
        frag.count,
        frag.length,
        frag.op,
        len(frag.key),
        frag.expiry_ms,
    )
    return _seal(secret, b"".join((head, frag.key, frag.chunk)))


_STAMP = struct.Struct(">Q")
_STAMP_AT = _HEADER.size - _STAMP.size  # the header ends with the timestamp


def restamp(secret: bytes, datagram: bytes, now: float) -> bytes:
    """*datagram* (signed) again, stamped with *now* and signed anew: a repair of a
    datagram as first sent, for receivers whose timestamp window it may have left."""
    head_and_body = bytearray(datagram[:-TAG_SIZE])
    _STAMP.pack_into(head_and_body, _STAMP_AT, int(now * 1000))
    return _seal(secret, bytes(head_and_body))


def encode_nak(
    secret: bytes,
    cluster: int,
    sender: int,
    now: float,
    target: int,
    ranges: list[tuple[int, int]] | tuple[tuple[int, int], ...],
) -> bytes:
    """A signed NAK; the caller keeps ``len(ranges)`` within :func:`max_nak_ranges`."""
    parts = [_header(FrameType.NAK, cluster, sender, now), _NAK.pack(target, len(ranges))]
    parts.extend(_RANGE.pack(first, last) for first, last in ranges)
    return _seal(secret, b"".join(parts))


def encode_heartbeat(
    secret: bytes, cluster: int, sender: int, now: float, high: int, low: int, started_ms: int
) -> bytes:
    """A signed HEARTBEAT."""
    head = _header(FrameType.HEARTBEAT, cluster, sender, now)
    return _seal(secret, head + _HEARTBEAT.pack(high, low, started_ms))


def encode_leave(secret: bytes, cluster: int, sender: int, now: float, high: int) -> bytes:
    """A signed LEAVE."""
    return _seal(secret, _header(FrameType.LEAVE, cluster, sender, now) + _LEAVE.pack(high))


def max_nak_ranges(mtu_payload: int) -> int:
    """How many ranges one NAK may carry within *mtu_payload* bytes."""
    return (mtu_payload - HEADER_SIZE - _NAK.size - TAG_SIZE) // _RANGE.size


@dataclass(slots=True)
class Fragment:
    """A DATA fragment before it is signed (no sender or timestamp yet).

    *size* is the whole datagram's size once signed.
    """

    sequence: int
    index: int
    count: int
    length: int
    op: Op
    key: bytes
    expiry_ms: int
    chunk: bytes
    size: int


def fragment(op: CacheOp, first_sequence: int, mtu_payload: int) -> list[Fragment]:
    """Split *op* into fragments numbered from *first_sequence*, each within *mtu_payload*.

    The caller has already turned a value over ``max_object`` into an
    ``INVALIDATE``; only ``SET`` carries a value.

    :raises ValueError: if the key leaves no room for value bytes in a datagram.
    """
    room = mtu_payload - DATA_OVERHEAD - len(op.key)
    if room < 1 or len(op.key) > 0xFFFF:
        raise ValueError(f"a key of {len(op.key)} bytes does not fit a {mtu_payload}-byte datagram")
    value = op.value if op.op is Op.SET else b""
    count = max(1, -(-len(value) // room))
    base = DATA_OVERHEAD + len(op.key)
    if count == 1:  # the common case, without a copy of the value
        n = len(value)
        return [Fragment(first_sequence, 0, 1, n, op.op, op.key, op.expiry_ms, value, base + n)]
    frags = []
    for i in range(count):
        chunk = value[i * room : (i + 1) * room]
        frags.append(
            Fragment(
                first_sequence + i,
                i,
                count,
                len(value),
                op.op,
                op.key,
                op.expiry_ms,
                chunk,
                base + len(chunk),
            )
        )
    return frags


def decode(
    datagram: bytes, secret: bytes, cluster: int, now: float, window: float, max_size: int
) -> Frame:
    """Check and parse one datagram.

    :param now: local time, seconds since the epoch.
    :param window: largest allowed distance between the datagram's timestamp and *now*.
    :param max_size: largest datagram accepted (the cluster's ``mtu_payload``).
    :raises WireError: the subclass naming the first check that failed (see above).
    """
    size = len(datagram)
    if size > max_size:
        raise Oversized(f"{size}-byte datagram is over mtu_payload ({max_size})")
    if size < HEADER_SIZE + TAG_SIZE:
        raise Truncated(f"{size}-byte datagram is shorter than a header")
    magic, version, kind, _flags, their_cluster, sender, stamp = _HEADER.unpack_from(datagram)
    if magic != MAGIC:
        raise BadMagic(f"not a replication datagram (magic {magic!r})")
    if version != VERSION:
        raise BadVersion(f"wire version {version}, this daemon speaks {VERSION}")
    if their_cluster != cluster:
        raise WrongCluster(f"cluster {their_cluster}, this daemon is in {cluster}")
    signed = memoryview(datagram)[:-TAG_SIZE]
    expect = _tag(secret, signed)
    if not hmac.compare_digest(expect, datagram[-TAG_SIZE:]):
        raise BadMac("tag does not match the cluster secret")
    if abs(stamp / 1000 - now) > window:
        raise Stale(f"timestamp {stamp} ms is {stamp / 1000 - now:+.3f} s from the local clock")
    if kind == FrameType.DATA:
        return _parse_data(sender, stamp, datagram)
    return _parse_body(kind, sender, stamp, signed[HEADER_SIZE:])


def _parse_body(kind: int, sender: int, stamp: int, body: memoryview) -> Frame:
    try:
        if kind == FrameType.NAK:
            return _parse_nak(sender, stamp, body)
        if kind == FrameType.HEARTBEAT and len(body) == _HEARTBEAT.size:
            high, low, started = _HEARTBEAT.unpack(body)
            return Heartbeat(sender, stamp, high, low, started)
        if kind == FrameType.LEAVE and len(body) == _LEAVE.size:
            return Leave(sender, stamp, _LEAVE.unpack(body)[0])
    except (struct.error, ValueError) as exc:
        raise Malformed(f"type {kind} body does not parse: {exc}") from None
    raise Malformed(f"unknown type {kind} or wrong body size {len(body)}")


_OPS = {int(op): op for op in Op}
_KEY_AT = HEADER_SIZE + _DATA.size


def _parse_data(sender: int, stamp: int, datagram: bytes) -> Data:
    """The DATA body of a datagram whose header and tag were checked."""
    if len(datagram) < _KEY_AT + TAG_SIZE:
        raise Malformed("DATA body shorter than its fixed part")
    seq, index, count, length, op, key_len, expiry = _DATA.unpack_from(datagram, HEADER_SIZE)
    chunk_at = _KEY_AT + key_len
    end = len(datagram) - TAG_SIZE
    if chunk_at > end or index >= count or seq < 1 or index >= seq or op not in _OPS:
        raise Malformed("DATA with an inconsistent sequence, fragment, operation or key length")
    if end - chunk_at > length:
        raise Malformed("DATA fragment longer than its value")
    key, chunk = datagram[_KEY_AT:chunk_at], datagram[chunk_at:end]
    return Data(sender, stamp, seq, index, count, length, _OPS[op], key, expiry, chunk)


def _parse_nak(sender: int, stamp: int, body: memoryview) -> Nak:
    target, n = _NAK.unpack_from(body)
    if len(body) != _NAK.size + n * _RANGE.size:
        raise ValueError("range count does not match the body")
    ranges = tuple(_RANGE.unpack_from(body, _NAK.size + i * _RANGE.size) for i in range(n))
    if any(first > last or first < 1 for first, last in ranges):
        raise ValueError("empty range")
    return Nak(sender, stamp, target, ranges)
