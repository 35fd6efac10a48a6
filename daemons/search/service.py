"""The life cycle of ``sleigh-searchd``.

open the newest index file (none yet: serve ``unavailable`` replies until
one appears) → adopt ``LISTEN_FDS`` or bind the Unix socket (and the TCP
address, if set) → start the broker and the worker threads → ``READY=1`` →
serve: every ``reload_interval`` and on ``SIGHUP`` (which also re-reads the
log settings and retries a refused file) swap to a newer index file →
``STOPPING=1`` → refuse new requests, finish those in flight within
``search.shutdown_timeout`` (a second signal cuts that short) → close the
index → remove a socket this process bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Mapping
from pathlib import Path

import zmq

from ... import __version__
from ..control.launch import reload_logging
from ..control.settings import Settings
from ..runtime.memory import freeze_startup
from ..runtime.notify import Notifier, keep_watchdog, watchdog_interval
from ..runtime.signals import RELOAD, Signals
from ..runtime.sockets import bind_unix, listen_fds, remove_unix
from .config import SearchConfig
from .handlers import Context
from .index import Holder, SearchIndex
from .protocol import Limits
from .server import Server
from .stats import Stats

log = logging.getLogger("sleigh.search")

EXIT_ESCALATED = 1

__all__ = ["limits", "opener", "serve"]


def opener(cfg: SearchConfig) -> Callable[[Path], SearchIndex]:
    """Opens and verifies one index file with the configured sort rules."""
    from ...core_ext.search import open_index

    rules = cfg.sort_rule_map()

    def open_one(path: Path) -> SearchIndex:
        return open_index(path, sort_rules=rules)

    return open_one


def limits(cfg: SearchConfig) -> Limits:
    """What requests may ask for, from the configuration."""
    from ...core_ext.search import SORTS

    return Limits(
        max_terms=cfg.max_terms,
        max_query_len=cfg.max_query_len,
        max_limit=cfg.max_limit,
        max_offset=cfg.max_offset,
        max_request=cfg.max_request,
        sorts=frozenset(SORTS) | frozenset(cfg.sort_rule_map()),
    )


def _endpoint(sock: socket.socket) -> str:
    name = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return f"ipc://{name}"
    host = f"[{name[0]}]" if sock.family == socket.AF_INET6 else name[0]
    return f"tcp://{host}:{name[1]}"


def _adopt(front: zmq.Socket[bytes], sock: socket.socket) -> str:
    """Have *front* serve on the listening *sock* (ZeroMQ's ``ZMQ_USE_FD``)."""
    endpoint = _endpoint(sock)
    front.setsockopt(zmq.USE_FD, sock.fileno())
    front.bind(endpoint)
    sock.detach()  # the fd is ZeroMQ's now, closed by it
    front.setsockopt(zmq.USE_FD, -1)
    return endpoint


def open_front(
    zctx: zmq.Context[zmq.Socket[bytes]], cfg: SearchConfig, home: Path, environ: Mapping[str, str]
) -> tuple[zmq.Socket[bytes], list[str], list[Path]]:
    """The bound ROUTER, its endpoints, and the socket paths bound here (to remove)."""
    front = zctx.socket(zmq.ROUTER)
    front.setsockopt(zmq.LINGER, 0)
    try:
        adopted = listen_fds(environ)
        if adopted:
            return front, [_adopt(front, sock) for sock in adopted], []
        path = cfg.socket_path(home)
        path.parent.mkdir(parents=True, exist_ok=True)
        endpoints = [_adopt(front, bind_unix(path, mode=cfg.socket_mode))]
        tcp = cfg.tcp_endpoint()
        if tcp is not None:
            front.bind(tcp)
            endpoints.append(tcp)
    except BaseException:
        front.close(linger=0)
        raise
    return front, endpoints, [path]


def _status(holder: Holder, address: str) -> str:
    info = holder.info
    served = "no index yet" if info is None else f"index version {info.version}"
    return f"serving on {address}, {served}"


async def serve(
    settings: Settings,
    environ: Mapping[str, str],
    reload_settings: Callable[[], Settings] | None = None,
) -> int:
    """Run the search daemon until it is told to stop; the exit status."""
    cfg = settings.search
    notifier = Notifier(environ)
    holder = Holder(cfg.index_path(settings.home), opener(cfg), cfg.update_retention)
    await asyncio.to_thread(holder.refresh)
    if holder.info is None:
        log.warning("no index file in %s yet: run `sleigh search reindex`", holder.directory)
    zctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    front, endpoints, bound = open_front(zctx, cfg, settings.home, environ)
    address = ", ".join(endpoints)
    ctx = Context(holder, limits(cfg), Stats(), cfg.worker_count(), __version__, address)
    server = Server(zctx, front, ctx)
    server.start()
    log.info("serving on %s with %d workers", address, ctx.workers)
    interval = watchdog_interval(environ)
    tasks = [asyncio.create_task(_watch(holder, cfg.reload_interval))]
    if interval:
        tasks.append(asyncio.create_task(keep_watchdog(notifier, interval)))
    drained = False
    try:
        with Signals() as signals:
            await _until_stop(signals, notifier, holder, address, reload_settings)
            drained, status = await _stop(server, signals, cfg.shutdown_timeout)
            return status
    finally:
        for task in tasks:
            task.cancel()
        for path in bound:
            remove_unix(path)
        if drained:
            server.close()
            holder.close()
            zctx.term()
        notifier.close()
        log.info("stopped")


async def _watch(holder: Holder, interval: float) -> None:
    """Look for a newer index file every *interval* seconds (never, if 0)."""
    if interval <= 0:
        return
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(holder.refresh)
        except Exception:  # a failed look must not stop the watching
            log.exception("looking for a new index file failed")


async def _until_stop(
    signals: Signals,
    notifier: Notifier,
    holder: Holder,
    address: str,
    reload_settings: Callable[[], Settings] | None,
) -> None:
    """READY=1, then serve SIGHUPs until a stop signal; STOPPING=1."""
    freeze_startup()
    notifier.ready(_status(holder, address))
    while await signals.wait() == RELOAD:
        notifier.reloading()
        if reload_logging(reload_settings, "sleigh-searchd"):
            log.info("reloaded the log settings; other settings apply after a restart")
        await asyncio.to_thread(holder.refresh, retry_refused=True)
        notifier.ready(_status(holder, address))
    notifier.stopping()


async def _stop(server: Server, signals: Signals, deadline: float) -> tuple[bool, int]:
    """Drain within *deadline*; whether it drained, and the exit status."""
    log.info("stopping: finishing the requests in flight (at most %.3gs)", deadline)
    server.drain()
    finished = asyncio.ensure_future(asyncio.to_thread(server.finished.wait, deadline))
    escalated = asyncio.ensure_future(signals.escalated())
    await asyncio.wait([finished, escalated], return_when="FIRST_COMPLETED")
    escalated.cancel()
    if server.finished.is_set():
        return True, 0
    server.stop_now()
    with contextlib.suppress(asyncio.CancelledError):
        await finished
    if signals.stops >= 2:
        log.warning("second stop signal: stopped without waiting for the requests in flight")
        return False, EXIT_ESCALATED
    log.warning("requests still in flight after %.3gs: stopped without them", deadline)
    return False, 0
