"""The life cycle of ``sleigh-throttled``.

load the rules → replay the log (drop what expired, compact) → adopt
``LISTEN_FDS`` or bind → ``READY=1`` → serve; every ``sync_interval`` the
log is ``fdatasync``'ed, expired keys are swept and an oversized log is
compacted; ``SIGHUP`` reloads the rules and logs what changed →
``STOPPING=1`` → stop accepting, let clients read their last replies
(within ``shutdown_timeout``) → sync and close the log → remove a socket
this process bound.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from ..control.launch import reload_logging
from ..control.settings import Settings
from ..runtime.memory import freeze_startup
from ..runtime.notify import Notifier, keep_watchdog, watchdog_interval
from ..runtime.signals import RELOAD, Signals
from ..runtime.sockets import addresses, open_listeners, remove_unix
from .config import ThrottleConfig
from .errors import ThrottleError
from .gcra import Table
from .handlers import Context
from .logfile import (
    LogWriter,
    append_tail,
    header_bytes,
    install,
    open_log,
    snapshot_records,
    sync_directory,
    write_beside,
    write_snapshot,
)
from .rules import describe_changes, load_rules, rules_hash
from .server import Connection

log = logging.getLogger("sleigh.throttle")

EXIT_ESCALATED = 1
SWEEP_EVERY = 10.0
#: Keys swept between two turns of the loop (100,000 in one go held it 7-19 ms).
SWEEP_CHUNK = 10_000
#: States packed into a compaction's snapshot between two turns of the loop.
SNAPSHOT_CHUNK = 2_000


def open_sockets(
    cfg: ThrottleConfig, home: Path, environ: Mapping[str, str]
) -> tuple[list[socket.socket], list[Path]]:
    """The listening sockets: handed over, else bound here; and the paths bound here."""
    tcp = (cfg.tcp_host, cfg.tcp_port) if cfg.tcp_port else None
    return open_listeners(environ, cfg.socket_path(home), mode=cfg.socket_mode, tcp=tcp)


def open_context(cfg: ThrottleConfig, home: Path) -> Context:
    """Rules, replayed table and log writer."""
    rules = load_rules(cfg.rules_path(home))
    path = cfg.log_path(home)
    states = open_log(path, rules_hash(rules))
    writer = LogWriter(path)
    table = Table(rules, writer.append)
    table.states = states
    return Context(table, writer, rules, "", max_connections=cfg.max_connections)


def compact(ctx: Context) -> None:
    """Rewrite the log as one record per live key (the old one becomes ``.1``)."""
    started = time.perf_counter()
    ctx.writer.close()
    ctx.table.sweep(time.time_ns())
    write_snapshot(ctx.writer.path, ctx.table.states, rules_hash(ctx.rules), time.time_ns())
    ctx.writer = LogWriter(ctx.writer.path)
    ctx.table.sink = ctx.writer.append
    log.info(
        "compacted the log: %d live keys in %.3fs",
        len(ctx.table.states),
        time.perf_counter() - started,
    )


async def sweep(table: Table) -> int:
    """Drop the expired states, ``SWEEP_CHUNK`` keys a turn of the loop; how many."""
    now, keys, dropped = time.time_ns(), list(table.states), 0
    for start in range(0, len(keys), SWEEP_CHUNK):
        dropped += table.sweep(now, keys[start : start + SWEEP_CHUNK])
        await asyncio.sleep(0)
    return dropped


async def compact_aside(ctx: Context) -> None:
    """:func:`compact` without holding up the answers: the snapshot is packed
    ``SNAPSHOT_CHUNK`` states a turn of the loop, and written and synced in a worker
    thread. Measured with 100,000 live keys: in the loop, every answer waited 45-77 ms
    (past the web tier's 5 ms: its checks went to the in-process limits); this way the
    loop is held 3 ms at most. (Packed in a worker thread, the loop waited up to 10-15 ms
    at a time for the GIL.)

    Each state is read as its turn comes; every record appended to the old log from the
    start on is copied after the snapshot before the new log takes the old one's place,
    so the last record of each key in the new log is its latest state, as replay needs.
    """
    started = time.perf_counter()
    await sweep(ctx.table)
    writer, named, now = ctx.writer, rules_hash(ctx.rules), time.time_ns()
    writer.flush()
    states = ctx.table.states
    mark, keys = writer.size, list(states)  # (not a list of items: 100,000 new tuples
    ctx.compacting = True  # woke the garbage collector for 50 ms)
    try:
        data = bytearray(header_bytes(named, now))
        for start in range(0, len(keys), SNAPSHOT_CHUNK):
            chunk = keys[start : start + SNAPSHOT_CHUNK]
            data += snapshot_records(((k, states[k]) for k in chunk if k in states), now)
            await asyncio.sleep(0)
        temp = await asyncio.to_thread(write_beside, writer.path, data)
    finally:
        ctx.compacting = False
    writer.close()  # flushes what came meanwhile: the tail
    copied = append_tail(writer.path, mark, temp)
    install(temp, writer.path, durably=False)
    ctx.writer = LogWriter(writer.path)
    ctx.table.sink = ctx.writer.append
    await asyncio.to_thread(sync_directory, writer.path)
    log.info(
        "compacted the log: %d live keys in %.3fs (%d bytes of records came meanwhile)",
        len(keys),
        time.perf_counter() - started,
        copied,
    )
    if rules_hash(ctx.rules) != named:  # SIGHUP changed them meanwhile: name the new ones
        compact(ctx)


async def _housekeeping(ctx: Context, cfg: ThrottleConfig) -> None:
    """Sync the log on an interval; sweep expired keys; compact a log grown too big."""
    swept = time.monotonic()
    while True:
        await asyncio.sleep(cfg.sync_interval)
        try:
            await ctx.writer.sync_aside()
            if time.monotonic() - swept >= SWEEP_EVERY:
                await sweep(ctx.table)
                swept = time.monotonic()
            if ctx.writer.size > cfg.compact_size:
                await compact_aside(ctx)
        except OSError as exc:
            log.error("state log %s: %s", ctx.writer.path, exc)


def reload_rules(ctx: Context, settings: Settings) -> None:
    """Apply the rules file named by *settings*; log what changed (a bad file changes nothing)."""
    try:
        fresh = load_rules(settings.throttle.rules_path(settings.home))
    except ThrottleError as exc:
        log.error("rules reload refused, keeping the rules in force: %s", exc)
        return
    changes = describe_changes(ctx.rules, fresh)
    if not changes:
        log.info("rules reloaded: no change")
        return
    ctx.rules = fresh
    ctx.table.set_rules(fresh)
    if not ctx.compacting:  # (else the compaction under way compacts again when done)
        compact(ctx)  # the header names the rules in force
    log.info("rules reloaded: %s", "; ".join(changes))


async def serve(
    settings: Settings,
    environ: Mapping[str, str],
    reload_settings: Callable[[], Settings] | None = None,
) -> int:
    """Run the throttle daemon until it is told to stop; the exit status."""
    cfg = settings.throttle
    notifier = Notifier(environ)
    ctx = open_context(cfg, settings.home)
    try:
        sockets, bound = open_sockets(cfg, settings.home, environ)
    except BaseException:
        ctx.writer.close()
        raise
    ctx.address = addresses(sockets)
    loop = asyncio.get_running_loop()
    servers: list[asyncio.AbstractServer] = []
    for sock in sockets:
        if sock.family == socket.AF_UNIX:
            servers.append(await loop.create_unix_server(lambda: Connection(ctx), sock=sock))
        else:
            servers.append(await loop.create_server(lambda: Connection(ctx), sock=sock))
    log.info("serving on %s with rules %s", ctx.address, ", ".join(sorted(ctx.rules)))
    tasks = [asyncio.create_task(_housekeeping(ctx, cfg))]
    interval = watchdog_interval(environ)
    if interval:
        tasks.append(asyncio.create_task(keep_watchdog(notifier, interval)))
    try:
        with Signals() as signals:
            freeze_startup()
            notifier.ready(f"serving on {ctx.address}")
            while await signals.wait() == RELOAD:
                notifier.reloading()
                fresh = _reload(reload_settings)
                if fresh is not None:
                    reload_rules(ctx, fresh)
                notifier.ready(f"serving on {ctx.address}")
            notifier.stopping()
            return await _stop(ctx, servers, bound, signals, cfg.shutdown_timeout)
    finally:
        for task in tasks:
            task.cancel()
        ctx.writer.close()
        notifier.close()
        log.info("stopped; the log is synced")


def _reload(reload_settings: Callable[[], Settings] | None) -> Settings | None:
    if reload_settings is None or not reload_logging(reload_settings, "sleigh-throttled"):
        return None
    try:
        return reload_settings()
    except Exception as exc:  # a bad file must not stop a serving daemon
        log.error("reload refused: %s", exc)
        return None


async def _stop(
    ctx: Context,
    servers: list[asyncio.AbstractServer],
    bound: list[Path],
    signals: Signals,
    deadline: float,
) -> int:
    ctx.closing = True
    for server in servers:
        server.close()
    for path in bound:
        remove_unix(path)
    ctx.writer.sync()
    for transport in list(ctx.transports):
        transport.close()  # every request read was answered: the replies are flushed first
    until = time.monotonic() + deadline
    escalated = asyncio.ensure_future(signals.escalated())
    while ctx.transports and time.monotonic() < until and not escalated.done():  # noqa: ASYNC110
        await asyncio.sleep(0.01)  # connection_lost of each transport empties the set
    escalated.cancel()
    for transport in list(ctx.transports):
        transport.abort()
    return EXIT_ESCALATED if signals.stops >= 2 else 0
