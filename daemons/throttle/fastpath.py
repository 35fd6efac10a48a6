"""The daemon's fast path: a run of CHECK frames, the shape of nearly every request.

A one-key CHECK is ``u32 length | u8 op | u32 id | u8 1 | u8 key length | key | u32 cost``
with ``length == 11 + key length``, judged by :func:`answer_one`; a CHECK of
several keys (the web tier's) is parsed here and judged by ``Table.check``.
Frames are taken from the start of a read while they are well-formed CHECKs
of keys the table knows; the first that is not (or a partial frame) ends the
run, and the rest of the read goes through the general parser, which
answers it (with an error where one is due). Every frame is answered once
and in order.

:func:`run` is the compiled :func:`run_native` (``sleigh.core_ext._throttle``,
every CHECK judged in C) unless it is not built or
``SLEIGH_NO_EXTENSIONS=1``; then it is its twin :func:`run_python`.
:data:`NATIVE` says which. The same tests run both.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable

from ...core_ext import compiled
from . import protocol as p
from .errors import ProtocolError
from .gcra import ALLOW, State, Table, key_hash

HEAD = struct.Struct("<IBIBB")
COST = struct.Struct("<I")
REPLY = struct.Struct("<IBIBBIQ")
REPLY_LENGTH = REPLY.size - 4
#: The offset of the ``allowed`` byte in a reply frame.
ALLOWED_AT = 9
#: The state of a key never seen (never changed: a new key gets a list of its own).
NO_STATE: State = [0, 0, 0, 0]
_PRINTABLE = re.compile(rb"[!-~]+")


def check_one(table: Table, key: bytes, cost: int, now: int) -> tuple[bool, int, int] | None:
    """``(allowed, retry_after, remaining)`` for one key, or ``None`` if its kind has no rule."""
    reply = answer_one(table, key, cost, 0, now)
    if reply is None:
        return None
    allowed, _, remaining, retry = p.DECISION.unpack_from(reply, p.PREFIX.size)
    return bool(allowed), retry, remaining


def answer_one(table: Table, key: bytes, cost: int, rid: int, now: int) -> bytes | None:
    """The reply frame to a one-key CHECK, or ``None`` for a key the general path must answer.

    A key with a state was checked when it was first seen; a new one is
    checked here (printable, with a kind that has a rule).
    """
    states = table.states
    state = states.get(key, NO_STATE)
    if state is NO_STATE and (_PRINTABLE.fullmatch(key) is None or b":" not in key):
        return None
    limit = table.limits.get(key[: key.find(b":")])
    if limit is None:
        return None
    rule, interval, tolerance = limit
    tat, blocked = state[0], state[2]
    new = (tat if tat > now else now) + cost * interval
    wait = blocked - now if blocked > now else new - tolerance - now
    if wait > 0:
        table.deny(key, rule, now)
        return REPLY.pack(REPLY_LENGTH, p.OK, rid, 0, 0, 0, min(wait, p.U64_MAX))
    if state is NO_STATE:
        state = states[key] = [0, 0, 0, key_hash(key)]
    state[0] = new
    sink = table.sink
    if sink is not None:
        sink(ALLOW, key, state[3], now, new, state[1], state[2], cost)
    remaining = min((tolerance - new + now) // interval, p.U32_MAX)
    return REPLY.pack(REPLY_LENGTH, p.OK, rid, 1, p.NO_KEY, remaining, 0)


def parse_keys(data: bytes, pos: int, end: int, count: int) -> tuple[list[bytes], list[int]] | None:
    """The keys and costs of a CHECK body from *pos* to *end*, or ``None`` if it is not sound."""
    if not 1 <= count <= p.MAX_KEYS:
        return None
    keys: list[bytes] = []
    costs: list[int] = []
    for _ in range(count):
        if pos >= end:
            return None
        kend = pos + 1 + data[pos]
        if data[pos] > p.KEY_MAX or kend + 4 > end:
            return None
        key = data[pos + 1 : kend]
        if _PRINTABLE.fullmatch(key) is None or b":" not in key:
            return None
        keys.append(key)
        costs.append(COST.unpack_from(data, kend)[0])
        pos = kend + 4
    return (keys, costs) if pos == end else None


def answer_many(
    table: Table, data: bytes, pos: int, end: int, count: int, rid: int, now: int
) -> bytes | None:
    """The reply frame to a CHECK of several keys, or ``None`` to leave it to the general path."""
    parsed = parse_keys(data, pos + 10, end, count)
    if parsed is None:
        return None
    try:
        ok, retry, remaining, limiting = table.check(parsed[0], parsed[1], now)
    except ProtocolError:  # a kind without a rule: raised before anything changed
        return None
    if ok:
        return REPLY.pack(REPLY_LENGTH, p.OK, rid, 1, p.NO_KEY, min(remaining, p.U32_MAX), 0)
    return REPLY.pack(REPLY_LENGTH, p.OK, rid, 0, limiting, 0, min(retry, p.U64_MAX))


def run_python(table: Table, data: bytes, now: int, out: list[bytes]) -> tuple[int, int, int]:
    """Answer the CHECKs at the start of *data* into *out* (the twin of the compiled :func:`run`).

    :returns: bytes consumed, decisions allowed, decisions denied.
    """
    pos, size, allowed, answered = 0, len(data), 0, 0
    unpack, cost_at = HEAD.unpack_from, COST.unpack_from
    while size - pos >= HEAD.size:
        length, op, rid, count, klen = unpack(data, pos)
        end = pos + 4 + length
        if op != p.CHECK or end > size or length > p.MAX_FRAME:
            break
        if count == 1 and length == 11 + klen and klen <= p.KEY_MAX:
            reply = answer_one(table, data[pos + 11 : end - 4], cost_at(data, end - 4)[0], rid, now)
        else:
            reply = answer_many(table, data, pos, end, count, rid, now)
        if reply is None:
            break
        allowed += reply[ALLOWED_AT]
        answered += 1
        out.append(reply)
        pos = end
    return pos, allowed, answered - allowed


_MODULE = compiled("_throttle", "throttle fast path")
_COMPILED: Callable[..., tuple[int, int, int]] | None = None if _MODULE is None else _MODULE.run
#: True when :func:`run` is the compiled implementation.
NATIVE = _COMPILED is not None


def run_native(table: Table, data: bytes, now: int, out: list[bytes]) -> tuple[int, int, int]:
    """The same as :func:`run_python`, compiled (``sleigh.core_ext._throttle``).

    :raises RuntimeError: if it is not built (see :data:`NATIVE`).
    """
    if _COMPILED is None:
        raise RuntimeError("sleigh.core_ext._throttle is not built")
    return _COMPILED(table, data, now, out)


run = run_native if NATIVE else run_python
