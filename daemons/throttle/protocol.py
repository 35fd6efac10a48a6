"""The throttle's wire format, sans-IO: bytes in, requests out; replies to bytes.

Every frame, both ways, is a length-prefixed message (little-endian)::

    request  u32 length | u8 op    | u32 id | body        (length counts op, id, body)
    reply    u32 length | u8 status | u32 id | body       (status 0 ok, 1 error)

    CHECK, PEEK, CHARGE body   u8 n | n x (u8 key length | key | u32 cost)
    SHOW, RESET body           u8 key length | key
    PING, STATS body           (empty)

    CHECK/PEEK/CHARGE reply    u8 allowed | u8 limiting key (255: none) | u32 remaining
                               | u64 retry-after (ns)
    RESET reply                u8 whether the key had a state
    SHOW, STATS reply          UTF-8 JSON
    error reply                UTF-8 message

A key is ``KIND:VALUE`` in printable ASCII, at most 48 bytes. CHECK admits
or denies all keys at once; PEEK answers the same without changing
anything; CHARGE charges after the fact (CPU time) whatever the state.

The parser's states: reading a header, reading a body, closed. A frame
whose length is over ``max_frame`` cannot be skipped safely: it gets an
error reply and the parser closes (the server then closes the connection).
A frame of a good length with a bad body gets an error reply; the next
frame is read as usual.
"""

from __future__ import annotations

import enum
import re
import struct
from dataclasses import dataclass

from .errors import ProtocolError

PING, CHECK, PEEK, CHARGE, SHOW, RESET, STATS = range(7)
OPS = frozenset(range(7))
KEYED_OPS = frozenset({CHECK, PEEK, CHARGE})
OK, ERROR = 0, 1

PREFIX = struct.Struct("<IBI")
DECISION = struct.Struct("<BBIQ")
COUNT = struct.Struct("<B")
COST = struct.Struct("<I")
MAX_FRAME = 4096
MAX_KEYS = 32
KEY_MAX = 48
NO_KEY = 255
#: Replies carry at most these (a longer wait is sent as the longest one).
U32_MAX, U64_MAX = 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF
_PRINTABLE = re.compile(rb"[!-~]+")


class State(enum.Enum):
    HEADER = "header"
    BODY = "body"
    CLOSED = "closed"


@dataclass(slots=True)
class Request:
    op: int
    id: int
    keys: list[bytes]
    costs: list[int]


@dataclass(slots=True)
class BadFrame:
    """A frame that gets an error reply; ``fatal``: the connection must close after it."""

    id: int
    message: str
    fatal: bool = False


def _check_key(key: bytes) -> bytes:
    if not key or b":" not in key or not _PRINTABLE.fullmatch(key):
        raise ProtocolError(f"a key is KIND:VALUE in printable ASCII, got {key[:48]!r}")
    return key


def parse_body(op: int, body: bytes | bytearray) -> tuple[list[bytes], list[int]]:
    """The keys and costs of one request body.

    :raises ProtocolError: if the body does not match its op.
    """
    body = bytes(body)
    if op in (PING, STATS):
        if body:
            raise ProtocolError("PING and STATS take no body")
        return [], []
    if op in (SHOW, RESET):
        if not body or body[0] + 1 != len(body):
            raise ProtocolError("SHOW and RESET take one key: u8 length, key")
        return [_check_key(body[1:])], []
    return _parse_keys(body)


def _parse_keys(body: bytes) -> tuple[list[bytes], list[int]]:
    if not body or not 1 <= body[0] <= MAX_KEYS:
        raise ProtocolError(f"a request names 1 to {MAX_KEYS} keys")
    keys: list[bytes] = []
    costs: list[int] = []
    pos = 1
    for _ in range(body[0]):
        if pos >= len(body):
            raise ProtocolError("the body ends inside a key")
        end = pos + 1 + body[pos]
        if body[pos] > KEY_MAX or end + 4 > len(body):
            raise ProtocolError(f"a key is 1 to {KEY_MAX} bytes followed by a u32 cost")
        keys.append(_check_key(body[pos + 1 : end]))
        costs.append(COST.unpack_from(body, end)[0])
        pos = end + 4
    if pos != len(body):
        raise ProtocolError("bytes left over after the last key")
    return keys, costs


class Parser:
    """Turns a byte stream into :class:`Request` and :class:`BadFrame` items."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self.buffer = bytearray()
        self.state = State.HEADER

    def feed(self, data: bytes) -> list[Request | BadFrame]:
        """Everything complete in the stream after *data*."""
        if self.state is State.CLOSED:
            return []
        self.buffer += data
        out: list[Request | BadFrame] = []
        buf, pos, size = self.buffer, 0, len(self.buffer)
        while size - pos >= PREFIX.size:
            length, op, rid = PREFIX.unpack_from(buf, pos)
            if length > self.max_frame or length < 5:
                out.append(
                    BadFrame(rid, f"frame length {length} outside 5..{self.max_frame}", True)
                )
                self.state = State.CLOSED
                self.buffer.clear()
                return out
            end = pos + 4 + length
            if end > size:
                self.state = State.BODY
                break
            out.append(self._request(op, rid, buf[pos + PREFIX.size : end]))
            pos = end
        else:
            self.state = State.HEADER
        del self.buffer[:pos]
        return out

    @staticmethod
    def _request(op: int, rid: int, body: bytes | bytearray) -> Request | BadFrame:
        if op not in OPS:
            return BadFrame(rid, f"unknown op {op}")
        try:
            keys, costs = parse_body(op, body)
        except ProtocolError as exc:
            return BadFrame(rid, str(exc))
        return Request(op, rid, keys, costs)


def request_body(op: int, keys: list[bytes], costs: list[int] | None = None) -> bytes:
    """What follows a request's ``length | op | id``: for a keyed op, the key count and
    each key with its cost (1 when *costs* is ``None``). A client may encode it once and
    send it with :func:`encode_frame` many times."""
    if op in KEYED_OPS:
        body = bytearray(COUNT.pack(len(keys)))
        for key, cost in zip(keys, costs or [1] * len(keys), strict=True):
            body.append(len(key))
            body += key
            body += COST.pack(cost)
        return bytes(body)
    return COUNT.pack(len(keys[0])) + keys[0] if op in (SHOW, RESET) else b""


def encode_frame(op: int, rid: int, body: bytes) -> bytes:
    """One request frame (client side) around a :func:`request_body`."""
    return PREFIX.pack(len(body) + 5, op, rid) + body


def encode_request(op: int, rid: int, keys: list[bytes], costs: list[int] | None = None) -> bytes:
    """One request frame (client side)."""
    return encode_frame(op, rid, request_body(op, keys, costs))


def encode_reply(rid: int, body: bytes, status: int = OK) -> bytes:
    """One reply frame (daemon side)."""
    return PREFIX.pack(len(body) + 5, status, rid) + body


class ReplyParser:
    """Turns the daemon's byte stream into ``(status, id, body)`` replies (client side)."""

    def __init__(self, max_frame: int = 1 << 20) -> None:
        self.max_frame = max_frame
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, int, bytes]]:
        """Every complete reply.

        :raises ProtocolError: if the stream is not replies.
        """
        self.buffer += data
        out = []
        buf, pos = self.buffer, 0
        while len(buf) - pos >= PREFIX.size:
            length, status, rid = PREFIX.unpack_from(buf, pos)
            if length > self.max_frame or length < 5:
                raise ProtocolError(f"reply length {length} is out of range")
            end = pos + 4 + length
            if end > len(buf):
                break
            out.append((status, rid, bytes(buf[pos + PREFIX.size : end])))
            pos = end
        del buf[:pos]
        return out
