"""One small function per command, and the table the server dispatches on.

A read handler answers at once from the batch's read snapshot. A write
handler checks its arguments, submits the write to the group-commit
writer and returns a :class:`Pending`: the reply is made from the write's
result once its transaction committed. Arguments are validated before
anything is submitted, so a bad command changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from . import protocol as p
from .errors import (
    CacheError,
    EmptyKey,
    KeyTooLong,
    NotAnInteger,
    SyntaxErr,
    ValueTooLarge,
    WrongArity,
)
from .ops import NEVER, Condition, Delete, Expire, Flush, Set
from .store import ReadView

if TYPE_CHECKING:
    from .server import Connection, Context

Args = list[bytes]


class Pending(NamedTuple):
    """A write in flight: its future and how to turn its result into a reply."""

    future: asyncio.Future[object]
    reply: Callable[[object], bytes]


ReadHandler = Callable[["Context", "Connection", Args, ReadView | None], bytes]
WriteHandler = Callable[["Context", "Connection", Args], "Pending | bytes"]


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    handler: ReadHandler | WriteHandler
    arity: int  # as Redis: n exact, -n at least n (the name included)
    write: bool = False
    view: bool = False  # needs the batch's read snapshot

    def arity_ok(self, count: int) -> bool:
        return count == self.arity if self.arity >= 0 else count >= -self.arity


def _key(ctx: Context, raw: bytes) -> bytes:
    if not raw:
        raise EmptyKey()
    if len(raw) > ctx.config.key_max:
        raise KeyTooLong(ctx.config.key_max)
    return raw


def _int(raw: bytes) -> int:
    try:
        return int(raw)
    except ValueError:
        raise NotAnInteger() from None


def _write(ctx: Context, op: object, reply: Callable[[object], bytes]) -> Pending:
    return Pending(ctx.writer.submit(op), reply)  # type: ignore[arg-type]


def reply_ok(result: object) -> bytes:
    if isinstance(result, CacheError):
        return p.error(str(result))
    return p.OK if result else p.NULL_BULK


def _reply_bool(result: object) -> bytes:
    if isinstance(result, CacheError):
        return p.error(str(result))
    return p.integer(1 if result else 0)


def _reply_int(result: object) -> bytes:
    if isinstance(result, CacheError):
        return p.error(str(result))
    return p.integer(int(result))  # type: ignore[call-overload]


# -- connection ---------------------------------------------------------------


def ping(ctx: Context, conn: Connection, args: Args, view: ReadView | None) -> bytes:
    if len(args) > 2:
        raise WrongArity("ping")
    return p.PONG if len(args) == 1 else p.bulk(args[1])


def echo(ctx: Context, conn: Connection, args: Args, view: ReadView | None) -> bytes:
    return p.bulk(args[1])


def quit_(ctx: Context, conn: Connection, args: Args, view: ReadView | None) -> bytes:
    conn.closing = True
    return p.OK


def client(ctx: Context, conn: Connection, args: Args, view: ReadView | None) -> bytes:
    sub = args[1].upper()
    if sub == b"SETNAME" and len(args) == 3:
        if any(c <= 32 for c in args[2]):
            raise SyntaxErr("Client names cannot contain spaces, newlines or special characters.")
        conn.name = args[2].decode("utf-8", "replace")
        return p.OK
    if sub == b"GETNAME" and len(args) == 2:
        return p.bulk(conn.name.encode()) if conn.name else p.NULL_BULK
    if sub == b"ID" and len(args) == 2:
        return p.integer(conn.id)
    if sub == b"SETINFO" and len(args) == 4:
        return p.OK
    if sub == b"REPLICATED" and len(args) == 3 and args[2].upper() in (b"ON", b"OFF"):
        # The replicator's connection: what it writes came from a peer, and
        # is never published again (no echo between hosts).
        conn.publish = args[2].upper() == b"OFF"
        return p.OK
    if sub == b"INFO" and len(args) == 2:
        return p.bulk(conn.describe().encode() + b"\n")
    name = sub.decode("latin-1").lower()
    raise SyntaxErr(f"unknown subcommand or wrong number of arguments for 'client|{name}'")


def hello(ctx: Context, conn: Connection, args: Args, view: ReadView | None) -> bytes:
    """``HELLO [2|3] [SETNAME name]``: RESP2, or RESP3 as far as this daemon's
    replies need it (RESP3 nulls, and this reply as a map)."""
    if len(args) > 1:
        if args[1] not in (b"2", b"3"):
            return p.error("NOPROTO unsupported protocol version")
        conn.use_resp3(args[1] == b"3")
    options = args[2:]
    if len(options) == 2 and options[0].upper() == b"SETNAME":
        conn.name = options[1].decode("utf-8", "replace")
    elif options:
        raise SyntaxErr("HELLO supports only SETNAME here (no AUTH: the socket's mode guards it)")
    fields = [
        (b"server", p.bulk(b"redis")),
        (b"version", p.bulk(b"7.0.0")),
        (b"proto", p.integer(3 if conn.resp3 else 2)),
        (b"id", p.integer(conn.id)),
        (b"mode", p.bulk(b"standalone")),
        (b"role", p.bulk(b"master")),
        (b"modules", p.EMPTY_ARRAY),
    ]
    parts = [part for name, value in fields for part in (p.bulk(name), value)]
    if conn.resp3:
        return b"%%%d\r\n" % len(fields) + b"".join(parts)
    return p.array_raw(parts)


def command(ctx: Context, conn: Connection, args: Args, view: ReadView | None) -> bytes:
    sub = args[1].upper() if len(args) > 1 else b""
    if sub == b"COUNT":
        return p.integer(len(COMMANDS))
    if sub == b"DOCS":
        return p.EMPTY_ARRAY
    if sub in (b"", b"INFO"):
        names = [a.upper() for a in args[2:]] if sub else list(COMMANDS)
        return p.array_raw([_command_info(COMMANDS.get(n)) for n in names])
    raise SyntaxErr(f"unknown subcommand '{sub.decode('latin-1')}'")


def _command_info(cmd: Command | None) -> bytes:
    if cmd is None:
        return p.NULL_BULK
    flags = [p.simple("write" if cmd.write else "readonly"), p.simple("fast")]
    first = 1 if cmd.name not in ("ping", "echo", "info", "dbsize", "flushdb", "scan") else 0
    return p.array_raw(
        [
            p.bulk(cmd.name.encode()),
            p.integer(cmd.arity),
            p.array_raw(flags),
            p.integer(first),
            p.integer(-1 if first and cmd.arity < 0 else first),
            p.integer(1 if first else 0),
        ]
    )


def config(ctx: Context, conn: Connection, args: Args, view: ReadView | None) -> bytes:
    if args[1].upper() != b"GET" or len(args) != 3:
        raise SyntaxErr("CONFIG supports only GET here")
    known = {b"save": b"", b"appendonly": b"no", b"maxmemory": str(ctx.config.map_size).encode()}
    pattern = args[2].lower()
    pairs = [(k, v) for k, v in known.items() if pattern in (k, b"*")]
    return p.array([part for pair in pairs for part in pair])


# -- reads --------------------------------------------------------------------


def get(ctx: Context, conn: Connection, args: Args, view: ReadView | None) -> bytes:
    assert view is not None
    value = view.get(args[1])
    stats = ctx.stats
    if value is None:
        stats.misses += 1
        return conn.null
    stats.hits += 1
    return p.bulk(value)


def mget(ctx: Context, conn: Connection, args: Args, view: ReadView | None) -> bytes:
    assert view is not None
    values = [view.get(key) for key in args[1:]]
    hits = sum(v is not None for v in values)
    ctx.stats.hits += hits
    ctx.stats.misses += len(values) - hits
    return p.array(values, conn.null)


def exists(ctx: Context, conn: Connection, args: Args, view: ReadView | None) -> bytes:
    assert view is not None
    return p.integer(sum(view.pttl(key) != -2 for key in args[1:]))


def pttl(ctx: Context, conn: Connection, args: Args, view: ReadView | None) -> bytes:
    assert view is not None
    return p.integer(view.pttl(args[1]))


def ttl(ctx: Context, conn: Connection, args: Args, view: ReadView | None) -> bytes:
    assert view is not None
    left = view.pttl(args[1])
    return p.integer(left if left < 0 else (left + 500) // 1000)


def dbsize(ctx: Context, conn: Connection, args: Args, view: ReadView | None) -> bytes:
    return p.integer(ctx.store.count())


def scan(ctx: Context, conn: Connection, args: Args, view: ReadView | None) -> bytes:
    cursor = b"" if args[1] == b"0" else _cursor(args[1])
    count, match = 10, None
    rest = args[2:]
    if len(rest) % 2:
        raise SyntaxErr()
    for option, value in zip(rest[::2], rest[1::2], strict=True):
        word = option.upper()
        if word == b"COUNT":
            count = _int(value)
            if count < 1:
                raise SyntaxErr()
        elif word == b"MATCH":
            match = value
        elif word == b"TYPE":
            if value.lower() != b"string":
                return p.array_raw([p.bulk(b"0"), p.EMPTY_ARRAY])
        else:
            raise SyntaxErr()
    following, keys = ctx.store.scan(cursor, min(count, 100_000), match)
    cursor_text = str(int.from_bytes(b"\x01" + following, "big")).encode() if following else b"0"
    return p.array_raw([p.bulk(cursor_text), p.array(keys)])


def _cursor(raw: bytes) -> bytes:
    """A SCAN cursor is the last key returned, as a decimal integer (a 1 byte
    in front keeps leading zero bytes), since clients parse cursors as numbers."""
    try:
        number = int(raw)
    except ValueError:
        raise SyntaxErr("invalid cursor") from None
    if number <= 0 or number.bit_length() > 8 * 513:
        raise SyntaxErr("invalid cursor")
    data = number.to_bytes((number.bit_length() + 7) // 8, "big")
    if data[:1] != b"\x01":
        raise SyntaxErr("invalid cursor")
    return data[1:]


def info(ctx: Context, conn: Connection, args: Args, view: ReadView | None) -> bytes:
    sections = [a.decode("latin-1").lower() for a in args[1:]]
    return p.bulk(ctx.info_text(sections).encode())


# -- writes -------------------------------------------------------------------


def set_(ctx: Context, conn: Connection, args: Args) -> Pending | bytes:
    key = _key(ctx, args[1])
    value = args[2]
    if len(value) > ctx.config.value_max:
        raise ValueTooLarge(ctx.config.value_max)
    ctx.stats.sets += 1
    if len(args) == 3:
        return _write(ctx, Set(key, value, NEVER, publish=conn.publish), reply_ok)
    expires, condition, keep_ttl, local = _set_options(ctx, args[3:])
    op = Set(key, value, expires, condition, keep_ttl, conn.publish and not local)
    return _write(ctx, op, reply_ok)


def _set_options(ctx: Context, options: Args) -> tuple[int, Condition, bool, bool]:
    """``[NX|XX] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL] [LOCAL]``; LOCAL (ours, not
    Redis's) keeps the write on this host: it is not published for replication."""
    expires, keep_ttl, local = NEVER, False, False
    condition: Condition = ""
    i = 0
    while i < len(options):
        word = options[i].upper()
        if word == b"LOCAL" and not local:
            local = True
        elif word in (b"NX", b"XX") and not condition:
            condition = "nx" if word == b"NX" else "xx"
        elif word == b"KEEPTTL" and expires == NEVER and not keep_ttl:
            keep_ttl = True
        elif word in (b"EX", b"PX", b"EXAT", b"PXAT") and expires == NEVER and not keep_ttl:
            i += 1
            if i == len(options):
                raise SyntaxErr()
            expires = _expiry(ctx, word, _int(options[i]))
        else:
            raise SyntaxErr()
        i += 1
    return expires, condition, keep_ttl, local


def _expiry(ctx: Context, unit: bytes, amount: int) -> int:
    if amount <= 0 or amount > 2**53:
        raise SyntaxErr("invalid expire time in 'set' command")
    now = ctx.store.clock_ms()
    if unit == b"EX":
        return now + amount * 1000
    if unit == b"PX":
        return now + amount
    if unit == b"EXAT":
        return amount * 1000
    return amount


def delete(ctx: Context, conn: Connection, args: Args) -> Pending | bytes:
    keys = tuple(args[1:])
    ctx.stats.deletes += len(keys)
    return _write(ctx, Delete(keys, conn.publish), _reply_int)


def _expire_command(unit: bytes, absolute: bool = False) -> WriteHandler:
    """``EXPIRE``/``PEXPIRE`` (relative) or ``EXPIREAT``/``PEXPIREAT`` (*absolute*)."""
    scale = 1000 if unit == b"EX" else 1

    def handler(ctx: Context, conn: Connection, args: Args) -> Pending | bytes:
        key = _key(ctx, args[1])
        amount = _int(args[2])
        if len(args) > 3:
            raise SyntaxErr("EXPIRE options (NX, XX, GT, LT) are not supported")
        now = ctx.store.clock_ms()
        if amount > 2**53:
            raise SyntaxErr("invalid expire time in 'expire' command")
        if amount <= 0:
            expires = now  # already due: the key is deleted, as Redis does
        else:
            expires = max(amount * scale, 1) if absolute else now + amount * scale
        return _write(ctx, Expire(key, expires, conn.publish), _reply_bool)

    return handler


def flushdb(ctx: Context, conn: Connection, args: Args) -> Pending | bytes:
    if len(args) > 2 or (len(args) == 2 and args[1].upper() not in (b"SYNC", b"ASYNC")):
        raise SyntaxErr()
    return _write(ctx, Flush(conn.publish), reply_ok)


COMMANDS: dict[bytes, Command] = {
    c.name.upper().encode(): c
    for c in (
        Command("ping", ping, -1),
        Command("echo", echo, 2),
        Command("quit", quit_, -1),
        Command("client", client, -2),
        Command("hello", hello, -1),
        Command("command", command, -1),
        Command("config", config, -2),
        Command("get", get, 2, view=True),
        Command("mget", mget, -2, view=True),
        Command("exists", exists, -2, view=True),
        Command("ttl", ttl, 2, view=True),
        Command("pttl", pttl, 2, view=True),
        Command("dbsize", dbsize, 1),
        Command("scan", scan, -2),
        Command("info", info, -1),
        Command("set", set_, -3, write=True),
        Command("del", delete, -2, write=True),
        Command("unlink", delete, -2, write=True),
        Command("expire", _expire_command(b"EX"), -3, write=True),
        Command("pexpire", _expire_command(b"PX"), -3, write=True),
        Command("expireat", _expire_command(b"EX", absolute=True), -3, write=True),
        Command("pexpireat", _expire_command(b"PX", absolute=True), -3, write=True),
        Command("flushdb", flushdb, -1, write=True),
        Command("flushall", flushdb, -1, write=True),
    )
}
