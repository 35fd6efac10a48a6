"""The daemon's fast path: a run of one-key CHECK frames, the shape of nearly every request.

A one-key CHECK is ``u32 length | u8 op | u32 id | u8 1 | u8 key length | key | u32 cost``
with ``length == 11 + key length``; its reply is one struct. Frames are
taken from the start of a read while they have that shape and a key the
table knows; the first that does not (or a partial frame) ends the run, and
the rest of the read goes through the general parser, so every frame is
still answered once and in order.
"""

from __future__ import annotations

import re
import struct

from . import protocol as p
from .gcra import ALLOW, Table, key_hash

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


def run(table: Table, data: bytes, now: int, out: list[bytes]) -> tuple[int, int, int]:
    """Answer the one-key CHECKs at the start of *data* into *out*.

    :returns: bytes consumed, decisions allowed, decisions denied.
    """
    pos, size, allowed, denied = 0, len(data), 0, 0
    unpack, pack = HEAD.unpack_from, REPLY.pack
    while size - pos >= HEAD.size:
        length, op, rid, count, klen = unpack(data, pos)
        end = pos + 4 + length
        if op != p.CHECK or count != 1 or length != 11 + klen or klen > p.KEY_MAX or end > size:
            break
        key = data[pos + 11 : pos + 11 + klen]
        if _PRINTABLE.fullmatch(key) is None:
            break
        got = check_one(table, key, COST.unpack_from(data, end - 4)[0], now)
        if got is None:
            break
        if got[0]:
            allowed += 1
            out.append(pack(REPLY_LENGTH, p.OK, rid, 1, p.NO_KEY, min(got[2], 0xFFFFFFFF), 0))
        else:
            denied += 1
            out.append(pack(REPLY_LENGTH, p.OK, rid, 0, 0, 0, got[1]))
        pos = end
    return pos, allowed, denied
