"""asyncio glue: feed the parser, dispatch, append the log, then reply."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import cast

from . import fastpath
from . import protocol as p
from .errors import ThrottleError
from .handlers import HANDLERS, Context

log = logging.getLogger("sleigh.throttle.server")


class Connection(asyncio.Protocol):
    """One client: every frame in a read is answered by one write, after the log write."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.parser = p.Parser()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.ctx.transports.add(self.transport)
        stats = self.ctx.stats
        stats.connections += 1
        stats.connections_total += 1
        if stats.connections > self.ctx.max_connections or self.ctx.closing:
            self.transport.write(p.encode_reply(0, b"too many connections; try later", p.ERROR))
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.ctx.stats.connections -= 1
        if self.transport is not None:
            self.ctx.transports.discard(self.transport)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        ctx = self.ctx
        now = time.time_ns()
        out: list[bytes] = []
        if not self.parser.buffer and self.parser.state is p.State.HEADER:
            used, allowed, denied = fastpath.run(ctx.table, data, now, out)
            ctx.stats.requests += allowed + denied
            ctx.stats.allowed += allowed
            ctx.stats.denied += denied
            if used:
                data = data[used:]
        items = self.parser.feed(data) if data else []
        for item in items:
            if isinstance(item, p.BadFrame):
                ctx.stats.errors += 1
                out.append(p.encode_reply(item.id, item.message.encode(), p.ERROR))
                continue
            ctx.stats.requests += 1
            try:
                body = HANDLERS[item.op](ctx, item, now)
            except ThrottleError as exc:
                ctx.stats.errors += 1
                out.append(p.encode_reply(item.id, str(exc).encode(), p.ERROR))
            else:
                out.append(p.encode_reply(item.id, body))
        try:
            ctx.writer.flush()
        except OSError as exc:
            log.error("cannot append to the state log %s: %s", ctx.writer.path, exc)
            out = [p.encode_reply(0, b"state log write failed", p.ERROR)]
            self.parser.state = p.State.CLOSED  # the client cannot trust the replies it has
        assert self.transport is not None
        self.transport.write(b"".join(out))
        if self.parser.state is p.State.CLOSED:
            self.transport.close()

    def eof_received(self) -> bool | None:
        return None
