"""The life cycle of ``sleigh-cached``.

open the environment (clearing stale reader slots; a broken one is moved
aside) → bind the write feed's publisher (``cache.publish``) → start the
writer thread → adopt ``LISTEN_FDS`` or bind the
socket → ``READY=1`` → serve (``SIGHUP`` re-reads the log settings) →
``STOPPING=1`` → stop accepting → commit every write already received →
answer and close every connection within ``cache.shutdown_timeout`` (a
second signal cuts that short) → send the feed's last messages and
close it → close the environment → remove a socket this process bound.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from ... import __version__
from ..control.launch import reload_logging
from ..control.settings import Settings
from ..runtime.memory import freeze_startup
from ..runtime.notify import Notifier, keep_watchdog, watchdog_interval
from ..runtime.signals import RELOAD, Signals
from ..runtime.sockets import addresses, open_listeners, remove_unix
from .config import CacheConfig
from .publish import Publisher, open_publisher
from .server import Context, connection_factory
from .store import Store
from .writer import make_writer

log = logging.getLogger("sleigh.cache")

EXIT_ESCALATED = 1


def open_sockets(
    cfg: CacheConfig, home: Path, environ: Mapping[str, str]
) -> tuple[list[socket.socket], list[Path]]:
    """The listening sockets: handed over, else bound here; and the paths bound here."""
    tcp = ("127.0.0.1", cfg.tcp_port) if cfg.tcp_port else None
    return open_listeners(
        environ,
        cfg.socket_path(home),
        mode=cfg.socket_mode,
        group=cfg.socket_group or None,
        tcp=tcp,
    )


def open_store(cfg: CacheConfig, home: Path) -> Store:
    """The LMDB environment, opened (a broken one moved aside, and said so)."""
    store, moved = Store.open(
        cfg.env_path(home),
        map_size=cfg.map_size,
        sync=cfg.sync,
        max_readers=cfg.max_readers,
        high_water=cfg.high_water,
        low_water=cfg.low_water,
    )
    usage = store.usage()
    log.info(
        "opened %s (%d entries, %.1f%% of %d MiB map, sync=%s%s)",
        store.env.path(),
        usage.entries,
        usage.fraction * 100,
        usage.map_size // 1024**2,
        cfg.sync,
        f"; a broken environment was moved to {moved}" if moved else "",
    )
    return store


async def listen(ctx: Context, sockets: list[socket.socket]) -> list[asyncio.AbstractServer]:
    """Serve RESP on every socket."""
    loop = asyncio.get_running_loop()
    factory = connection_factory(ctx)
    servers: list[asyncio.AbstractServer] = []
    for sock in sockets:
        if sock.family == socket.AF_UNIX:
            servers.append(await loop.create_unix_server(factory, sock=sock))
        else:
            servers.append(await loop.create_server(factory, sock=sock))
    log.info("serving on %s", ctx.address)
    return servers


async def serve(
    settings: Settings,
    environ: Mapping[str, str],
    reload_settings: Callable[[], Settings] | None = None,
) -> int:
    """Run the cache daemon until it is told to stop; the exit status."""
    cfg = settings.cache
    notifier = Notifier(environ)
    store = open_store(cfg, settings.home)
    try:
        publisher = open_publisher(cfg.publish_path(settings.home), store, cfg.publish_hwm)
    except BaseException:
        store.close()
        raise
    writer = make_writer(
        store,
        asyncio.get_running_loop(),
        sync=cfg.sync,
        max_batch=cfg.max_batch,
        sweep_interval=cfg.sweep_interval,
        sweep_batch=cfg.sweep_batch,
        on_commit=None if publisher is None else publisher.on_commit,
    )
    writer.start()
    try:
        sockets, bound = open_sockets(cfg, settings.home, environ)
    except BaseException:
        await writer.close()
        _close_publisher(publisher)
        store.close()
        raise
    ctx = Context(cfg, store, writer, version=__version__, address=addresses(sockets))
    ctx.publisher = publisher
    servers = await listen(ctx, sockets)
    interval = watchdog_interval(environ)
    pinger = asyncio.create_task(keep_watchdog(notifier, interval)) if interval else None
    try:
        with Signals() as signals:
            await _until_stop(signals, notifier, ctx.address, reload_settings)
            return await _stop(ctx, servers, bound, signals)
    finally:
        if pinger is not None:
            pinger.cancel()
        _close_publisher(publisher)
        store.close()
        notifier.close()
        log.info("stopped")


def _close_publisher(publisher: Publisher | None) -> None:
    if publisher is not None:
        publisher.close()


async def _until_stop(
    signals: Signals,
    notifier: Notifier,
    address: str,
    reload_settings: Callable[[], Settings] | None,
) -> None:
    """READY=1, then serve SIGHUPs until a stop signal; STOPPING=1."""
    freeze_startup()
    notifier.ready(f"serving on {address}")
    while await signals.wait() == RELOAD:
        notifier.reloading()
        if reload_logging(reload_settings, "sleigh-cached"):
            log.info("reloaded the log settings; other settings apply after a restart")
        notifier.ready(f"serving on {address}")
    notifier.stopping()


async def _stop(
    ctx: Context, servers: list[asyncio.AbstractServer], bound: list[Path], signals: Signals
) -> int:
    started = time.monotonic()
    ctx.closing = True
    for server in servers:
        server.close()
    for path in bound:
        remove_unix(path)
    pending = ctx.writer.pending
    await ctx.writer.close()
    log.info("stopping: committed the %d writes still queued", pending)
    if not ctx.connections:
        ctx.drained.set()
    for conn in list(ctx.connections.values()):
        conn.shutdown()
    remaining = max(0.0, started + ctx.config.shutdown_timeout - time.monotonic())
    drained = asyncio.ensure_future(ctx.drained.wait())
    escalated = asyncio.ensure_future(signals.escalated())
    await asyncio.wait([drained, escalated], timeout=remaining, return_when="FIRST_COMPLETED")
    drained.cancel()
    escalated.cancel()
    for conn in list(ctx.connections.values()):
        if conn.transport is not None:
            conn.transport.abort()
    return EXIT_ESCALATED if signals.stops >= 2 else 0
