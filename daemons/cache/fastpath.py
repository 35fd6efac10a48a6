"""Fast paths for the two shapes most traffic has: a batch of plain GETs,
and a batch of plain ``SET key value [EX s|PX ms]``.

Taken only when nothing of the connection is waiting (so order is kept);
each gives exactly the replies the general path gives. Anything else (one
other command in the batch, an option, a value a handler must refuse)
returns False before doing anything, and the general path answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .ops import NEVER, Set

if TYPE_CHECKING:
    from .server import Connection

_TTL_UNITS = {b"EX": 1000, b"PX": 1}


def answer_gets(conn: Connection, commands: list[list[bytes]]) -> bool:
    """Answer a batch made only of ``GET key``, from one read transaction, in one write."""
    for args in commands:
        # Most clients send upper case: compare before folding.
        if len(args) != 2 or (args[0] != b"GET" and args[0].upper() != b"GET"):
            return False
    ctx = conn.ctx
    null = conn.null
    if len(commands) == 1:  # an unpipelined client: no lists, no join
        reply = ctx.store.get_reply(commands[0][1], null)
        replies = [reply]
    else:
        replies = ctx.store.get_replies([args[1] for args in commands], null)
        reply = b"".join(replies)
    misses = replies.count(null)
    stats = ctx.stats
    stats.commands += len(commands)
    stats.hits += len(replies) - misses
    stats.misses += misses
    if conn.transport is not None:
        conn.transport.write(reply)
    return True


def submit_sets(conn: Connection, commands: list[list[bytes]]) -> bool:
    """Submit a batch made only of plain SETs; each is answered when it commits."""
    ctx = conn.ctx
    if len(commands) == 1:  # an unpipelined client
        op = _plain_set(conn, commands[0])
        if op is None:
            return False
        conn.slots.append(ctx.writer.submit_ticket(op, conn.flush))
        ctx.stats.commands += 1
        ctx.stats.sets += 1
        return True
    ops = [_plain_set(conn, args) for args in commands]
    if None in ops:
        return False
    submit = ctx.writer.submit_ticket
    slots = conn.slots
    flush = conn.flush
    for plain in ops:
        slots.append(submit(plain, flush))  # type: ignore[arg-type]
    ctx.stats.commands += len(ops)
    ctx.stats.sets += len(ops)
    return True


def _plain_set(conn: Connection, args: list[bytes]) -> Set | None:
    if len(args) == 3:
        ttl_ms = 0
    elif len(args) == 5 and args[4].isdigit() and args[3].upper() in _TTL_UNITS:
        ttl_ms = int(args[4]) * _TTL_UNITS[args[3].upper()]
        if not 0 < ttl_ms <= 2**53:
            return None
    else:
        return None
    config = conn.ctx.config
    key, value = args[1], args[2]
    if (args[0] != b"SET" and args[0].upper() != b"SET") or not 0 < len(key) <= config.key_max:
        return None
    if len(value) > config.value_max:
        return None
    expires = conn.ctx.store.clock_ms() + ttl_ms if ttl_ms else NEVER
    return Set(key, value, expires, "", False, conn.publish)
