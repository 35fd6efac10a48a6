"""asyncio glue: feed the parser, dispatch, write replies in order, push back.

Replies go out in request order. Each connection keeps a queue of reply
slots: bytes ready now, a write waiting for its commit, or a read that
came after a write of the same connection (run once that write has
committed, so a client always reads its own writes). Everything ready at
the front of the queue leaves in one ``transport.write``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, cast

from . import fastpath
from . import protocol as p
from .config import CacheConfig
from .errors import CommandError, UnknownCommand, WrongArity
from .handlers import COMMANDS, Command, Pending, ReadHandler, WriteHandler, reply_ok
from .info import Stats, info_text
from .publish import Publisher
from .readstats import Totals
from .store import ReadView, Store
from .writer import InlineWriter, Ticket, Writer

log = logging.getLogger("sleigh.cache.server")

#: Reply slots a connection may have waiting before it stops reading.
MAX_SLOTS = 50_000


class Context:
    """What every connection shares: the store, the writer, limits and counters."""

    def __init__(
        self,
        config: CacheConfig,
        store: Store,
        writer: InlineWriter | Writer,
        *,
        version: str,
        address: str,
    ) -> None:
        self.config = config
        self.store = store
        self.writer = writer
        self.version = version
        self.address = address
        self.started = time.time()
        self.stats = Stats()
        self.direct = Totals()  # direct reads, counted by the reading processes
        self.connections: dict[int, Connection] = {}
        self.closing = False
        self.drained = asyncio.Event()  # set when closing and the last connection is gone
        self.publisher: Publisher | None = None  # the write feed, when it is on
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)

    def info_text(self, sections: list[str]) -> str:
        return info_text(self, sections)


class _Deferred:
    """A read that must wait for an earlier write of the same connection."""

    __slots__ = ("args", "command")

    def __init__(self, command: Command, args: list[bytes]) -> None:
        self.command = command
        self.args = args


Slot = bytes | Pending | Ticket | _Deferred


class Connection(asyncio.Protocol):
    """One client connection."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.id = ctx.next_id()
        self.name = ""
        self.created = time.monotonic()
        self.closing = False
        self.transport: asyncio.Transport | None = None
        self.parser = p.RequestParser(
            request_max=ctx.config.request_max, max_args=ctx.config.max_args
        )
        self.slots: deque[Slot] = deque()
        self.peer = ""
        self.resp3 = False
        self.deferred_reads = 0  # reads queued behind a write of this connection
        self.null = p.NULL_BULK  # how a missing value is written on this connection
        self.publish = True  # False on the replicator's connection (CLIENT REPLICATED ON)

    def use_resp3(self, on: bool) -> None:
        self.resp3 = on
        self.null = p.NULL if on else p.NULL_BULK

    def describe(self) -> str:
        age = int(time.monotonic() - self.created)
        return f"id={self.id} addr={self.peer} name={self.name} age={age}"

    # -- asyncio.Protocol ----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        ctx = self.ctx
        ctx.stats.connections_received += 1
        peer = self.transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "unix"
        if ctx.closing or len(ctx.connections) >= ctx.config.max_connections:
            ctx.stats.rejected_connections += 1
            reason = "shutting down" if ctx.closing else "max number of clients reached"
            self.transport.write(p.error(f"ERR {reason}"))
            self.transport.close()
            self.closing = True
            return
        ctx.connections[self.id] = self

    def connection_lost(self, exc: Exception | None) -> None:
        ctx = self.ctx
        ctx.connections.pop(self.id, None)
        if ctx.closing and not ctx.connections:
            ctx.drained.set()
        self.transport = None
        self.slots.clear()
        self.deferred_reads = 0

    def pause_writing(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.closing and len(self.slots) <= MAX_SLOTS:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return  # after QUIT, a protocol error or a refusal nothing more is read
        started = time.perf_counter()
        parser = self.parser
        parser.feed(data)
        try:
            commands = parser.commands()
        except p.ProtocolError as exc:
            self._broken(exc)
            return
        if (
            commands
            and not self.slots
            and (fastpath.answer_gets(self, commands) or fastpath.submit_sets(self, commands))
        ):
            self.ctx.stats.observe(time.perf_counter() - started)
        elif commands:
            self._run(commands)
            self.ctx.stats.observe(time.perf_counter() - started)
        if parser.error is not None:
            # The commands before the bad one were answered; now say why we close.
            self._broken(parser.error)

    # -- dispatch ------------------------------------------------------------

    def _run(self, commands: list[list[bytes]]) -> None:
        view: ReadView | None = None
        slots = self.slots
        last_pending: Pending | None = None
        try:
            for args in commands:
                self.ctx.stats.commands += 1
                cmd = COMMANDS.get(args[0].upper())
                if cmd is None or not cmd.arity_ok(len(args)):
                    slots.append(_refusal(cmd, args))
                elif cmd.write and not self.deferred_reads:
                    slot = self._write(cmd, args)
                    if type(slot) is Pending:
                        last_pending = slot
                    slots.append(slot)
                elif cmd.write or last_pending is not None or self._waiting():
                    # A read waits for the writes before it; a write after a
                    # waiting read waits too, or the read would see it.
                    slots.append(_Deferred(cmd, args))
                    self.deferred_reads += not cmd.write
                else:
                    if cmd.view and view is None:
                        view = self.ctx.store.view()
                    slots.append(self._read(cmd, args, view))
                if self.closing:
                    break
        finally:
            if view is not None:
                view.close()
        if last_pending is not None:
            last_pending.future.add_done_callback(self.committed)
        self._flush()

    def _waiting(self) -> bool:
        return bool(self.slots) and type(self.slots[0]) is not bytes

    def _read(self, cmd: Command, args: list[bytes], view: ReadView | None) -> bytes:
        handler: ReadHandler = cmd.handler  # type: ignore[assignment]
        try:
            reply = handler(self.ctx, self, args, view)
            return self.null if reply is p.NULL_BULK else reply
        except CommandError as exc:
            return p.error(str(exc))
        except Exception:
            log.exception("%s failed", cmd.name)
            return p.error("ERR internal error; see the daemon's log")

    def _write(self, cmd: Command, args: list[bytes]) -> Pending | bytes:
        if self.ctx.closing:
            return p.error("ERR the cache is shutting down")
        handler: WriteHandler = cmd.handler  # type: ignore[assignment]
        try:
            return handler(self.ctx, self, args)
        except CommandError as exc:
            return p.error(str(exc))

    def _nulled(self, reply: bytes) -> bytes:
        return self.null if reply is p.NULL_BULK else reply

    def flush(self) -> None:
        """Send what is ready now (a writer's waiter: its writes committed)."""
        self._flush()

    def committed(self, future: asyncio.Future[Any]) -> None:
        self._flush()

    def _flush(self) -> None:
        slots = self.slots
        out: list[bytes] = []
        while slots:
            slot = slots[0]
            if type(slot) is bytes:
                out.append(slot)
            elif type(slot) is Ticket:
                if not slot.done:
                    break  # its writer calls flush() when it is
                result = slot.result
                out.append(p.OK if result is True else self._nulled(reply_ok(result)))
            elif type(slot) is Pending:
                if not slot.future.done():
                    slot.future.add_done_callback(self.committed)
                    break
                out.append(self._nulled(slot.reply(slot.future.result())))
            elif isinstance(slot, _Deferred) and slot.command.write:
                slots[0] = self._write(slot.command, slot.args)
                continue  # answer it now, or wait for its commit
            else:
                assert isinstance(slot, _Deferred)
                self.deferred_reads -= 1
                out.append(self._run_deferred(slot))
            slots.popleft()
        if self.transport is not None:
            self._send(out)

    def _send(self, out: list[bytes]) -> None:
        transport = self.transport
        assert transport is not None
        slots = self.slots
        if out:
            transport.write(b"".join(out))
        if self.closing and not slots:
            transport.close()
        elif len(slots) > MAX_SLOTS:
            transport.pause_reading()
        elif not slots and not transport.is_reading() and not self.closing:
            transport.resume_reading()

    def _run_deferred(self, slot: _Deferred) -> bytes:
        if not slot.command.view:
            return self._read(slot.command, slot.args, None)
        view = self.ctx.store.view()
        try:
            return self._read(slot.command, slot.args, view)
        finally:
            view.close()

    def _broken(self, exc: p.ProtocolError) -> None:
        self.ctx.stats.protocol_errors += 1
        log.debug(
            "closing connection %d: %s", self.id, exc
        )  # counted in INFO; a flood must not flood the log
        self.slots.append(p.error(str(exc)))
        self.closing = True
        if self.transport is not None:
            self.transport.pause_reading()
        self._flush()

    def shutdown(self) -> None:
        """Answer what was asked, then close."""
        self.closing = True
        if self.transport is not None:
            self.transport.pause_reading()
        self._flush()


def _refusal(cmd: Command | None, args: list[bytes]) -> bytes:
    if cmd is None:
        return p.error(str(UnknownCommand(_printable(args[0]))))
    return p.error(str(WrongArity(cmd.name)))


def _printable(name: bytes) -> str:
    return name[:64].decode("utf-8", "replace").replace("\r", " ").replace("\n", " ")


def connection_factory(ctx: Context) -> Callable[[], Connection]:
    return lambda: Connection(ctx)
