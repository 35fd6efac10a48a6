"""The daemon's fast path: a run of CHECK frames, the shape of nearly every request.

A one-key CHECK is ``u32 length | u8 op | u32 id | u8 1 | u8 key length | key | u32 cost``
with ``length == 11 + key length``, judged by :func:`check_one`; a CHECK of
several keys (the web tier's) is parsed here and judged by ``Table.check``.
Frames are taken from the start of a read while they are well-formed CHECKs
of keys the table knows; the first that is not (or a partial frame) ends the
run, and the rest of the read goes through the general parser, which
answers it (with an error where one is due). Every frame is answered once
and in order.
"""

from __future__ import annotations

import re
import struct

from . import protocol as p
from .errors import ProtocolError
from .gcra import ALLOW, Decision, Table, key_hash

HEAD = struct.Struct("<IBIBB")
COST = struct.Struct("<I")
REPLY = struct.Struct("<IBIBBIQ")
REPLY_LENGTH = REPLY.size - 4
_PRINTABLE = re.compile(rb"[!-~]+")


def check_one(table: Table, key: bytes, cost: int, now: int) -> tuple[bool, int, int] | None:
    """``(allowed, retry_after, remaining)`` for one key, or ``None`` if its kind has no rule."""
    colon = key.find(b":")
    rule = table.rules.get(key[:colon]) if colon > 0 else None
    if rule is None:
        return None
    interval, tolerance = rule.interval, rule.tolerance
    state = table.states.get(key)
    tat, blocked = (0, 0) if state is None else (state[0], state[2])
    new = (tat if tat > now else now) + cost * interval
    wait = blocked - now if blocked > now else new - tolerance - now
    if wait > 0:
        table.deny(key, rule, now)
        return False, wait, 0
    if state is None:
        state = table.states[key] = [0, 0, 0, key_hash(key)]
    state[0] = new
    sink = table.sink
    if sink is not None:
        sink(ALLOW, key, state[3], now, new, state[1], state[2], cost)
    return True, 0, (tolerance - new + now) // interval


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


def check_many(
    table: Table, data: bytes, pos: int, end: int, count: int, now: int
) -> Decision | None:
    """The decision on a CHECK of several keys, or ``None`` to leave it to the general path."""
    parsed = parse_keys(data, pos + 10, end, count)
    if parsed is None:
        return None
    try:
        return table.check(parsed[0], parsed[1], now)
    except ProtocolError:  # a kind without a rule: raised before anything changed
        return None


def run(table: Table, data: bytes, now: int, out: list[bytes]) -> tuple[int, int, int]:
    """Answer the CHECKs at the start of *data* into *out*.

    :returns: bytes consumed, decisions allowed, decisions denied.
    """
    pos, size, allowed, denied = 0, len(data), 0, 0
    unpack, pack = HEAD.unpack_from, REPLY.pack
    while size - pos >= HEAD.size:
        length, op, rid, count, klen = unpack(data, pos)
        end = pos + 4 + length
        if op != p.CHECK or end > size or length > p.MAX_FRAME:
            break
        if count == 1 and length == 11 + klen and klen <= p.KEY_MAX:
            key = data[pos + 11 : pos + 11 + klen]
            got = (
                None
                if _PRINTABLE.fullmatch(key) is None
                else check_one(table, key, COST.unpack_from(data, end - 4)[0], now)
            )
            if got is None:
                break
            ok, retry, remaining, limiting = got[0], got[1], got[2], -1 if got[0] else 0
        else:
            decision = check_many(table, data, pos, end, count, now)
            if decision is None:
                break
            ok, retry, remaining, limiting = decision
        if ok:
            allowed += 1
            out.append(pack(REPLY_LENGTH, p.OK, rid, 1, p.NO_KEY, min(remaining, 0xFFFFFFFF), 0))
        else:
            denied += 1
            out.append(pack(REPLY_LENGTH, p.OK, rid, 0, limiting, 0, retry))
        pos = end
    return pos, allowed, denied
