"""The life cycle of one ``sleigh-web`` worker process.

open the database pool and the object cache client → build the app → adopt ``LISTEN_FDS`` (or bind)
→ ``READY=1`` (and ``WATCHDOG=1`` pings when systemd asks for them) → serve
until a stop signal (``SIGHUP`` reloads templates and log settings) →
``STOPPING=1`` → drain requests in flight within ``web.shutdown_timeout``
(a second signal cuts the drain short) → close the pool → remove a Unix
socket this process bound itself (a handed-over one belongs to its owner).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from ..daemons.cache.client import AsyncCacheClient, from_config
from ..daemons.control.launch import reload_logging
from ..daemons.control.settings import Settings
from ..daemons.runtime.memory import freeze_startup
from ..daemons.runtime.notify import Notifier, keep_watchdog, watchdog_interval
from ..daemons.runtime.signals import RELOAD, Signals
from ..daemons.runtime.sockets import bind_tcp, bind_unix, listen_fds, remove_unix
from ..daemons.search.client import AsyncSearchClient
from .accepts import BalancedSite, open_table
from .access import FORMAT as ACCESS_FORMAT
from .access import AccessLogger
from .app import create_app
from .db.engine import create_engine
from .keys import VIEWS
from .security.keys import Keys, ensure_key_file, load_keys
from .server_log import server_log
from .services.mail import ConsoleMailer, FileMailer
from .throttle import Throttle

log = logging.getLogger("sleigh.web")
access_log = logging.getLogger("sleigh.web.access")

#: Exit status when a second signal cut the drain short.
EXIT_ESCALATED = 1


def describe(sock: socket.socket) -> str:
    """A socket's address for people: ``http://host:port/`` or ``unix:/path``."""
    name = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return f"unix:{name}"
    host, port = name[0], name[1]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def open_listeners(
    settings: Settings, environ: Mapping[str, str]
) -> tuple[list[socket.socket], Path | None]:
    """The sockets to serve on: those handed over by the parent, else our own.

    :returns: the sockets and, if this process bound a Unix socket, its path.
    """
    adopted = listen_fds(environ)
    if adopted:
        return adopted, None
    cfg = settings.web
    path = cfg.socket_path(settings.home)
    if path is not None:
        return [bind_unix(path)], path
    return [bind_tcp(cfg.host, cfg.port)], None


async def serve(
    settings: Settings,
    environ: Mapping[str, str],
    reload_settings: Callable[[], Settings] | None = None,
) -> int:
    """Run one worker until it is told to stop; the process exit status.

    :param reload_settings: re-reads the configuration on ``SIGHUP``.
    """
    notifier = Notifier(environ)
    key_path = settings.web.key_path(settings.home)
    ensure_key_file(key_path)
    keys = load_keys(key_path)
    throttle = Throttle.from_settings(settings) if settings.throttle.enabled else None
    parts = Parts.open(settings)
    app = parts.app(settings, keys, throttle)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=access_log if settings.web.access_log else None,
        access_log_class=AccessLogger.trusting(settings.throttle.client_ip_header),
        access_log_format=ACCESS_FORMAT,
        shutdown_timeout=settings.web.shutdown_timeout,
        logger=server_log(),
    )
    await runner.setup()
    freeze_startup()  # what exists now lives as long as the worker
    listeners, bound_path = open_listeners(settings, environ)
    interval = watchdog_interval(environ)
    pinger = asyncio.create_task(keep_watchdog(notifier, interval)) if interval else None
    try:
        where = await _start_sites(runner, listeners, settings)
        log.info("serving on %s", where)
        with Signals() as signals:
            notifier.ready(f"serving on {where}")
            while await signals.wait() == RELOAD:
                notifier.reloading()
                _reload(app, reload_settings)
                notifier.ready(f"serving on {where}")
            notifier.stopping()
            return await _drain(runner, signals, settings.web.shutdown_timeout)
    finally:
        if pinger is not None:
            pinger.cancel()
        await parts.close()
        if bound_path is not None:
            remove_unix(bound_path)
        notifier.close()


@dataclass
class Parts:
    """What a worker's app is built from and closes when it stops."""

    engine: AsyncEngine
    cache: AsyncCacheClient
    search: AsyncSearchClient

    @classmethod
    def open(cls, settings: Settings) -> Parts:
        engine = create_engine(
            settings.database, settings.home, query_timeout=settings.database.query_timeout
        )
        cache = from_config(settings.cache, settings.home, asynchronous=True)
        search = AsyncSearchClient(
            settings.web.search_endpoints() or settings.search.client_endpoints(settings.home),
            timeout=settings.search.client_timeout,
        )
        return cls(engine, cache, search)

    def app(self, settings: Settings, keys: Keys, throttle: Throttle | None) -> web.Application:
        """The storefront on these parts, with its mailer as configured."""
        mailer = (
            FileMailer(settings.web.mail_path(settings.home))
            if settings.web.mail == "file"
            else ConsoleMailer()
        )
        return create_app(
            settings.web,
            self.engine,
            cache=self.cache,
            keys=keys,
            mailer=mailer,
            throttle=throttle,
            search_client=self.search,
        )

    async def close(self) -> None:
        await self.cache.aclose()
        await self.search.aclose()
        await self.engine.dispose()


async def _start_sites(
    runner: web.AppRunner, listeners: list[socket.socket], settings: Settings
) -> str:
    """Serve on every listener (sharing new connections with the other workers on it, if
    ``web.balance_accepts``); where, for people."""
    run_dir = settings.home / "run"
    for sock in listeners:
        table = open_table(run_dir, sock) if settings.web.balance_accepts else None
        await BalancedSite(runner, sock, table).start()
    return ", ".join(describe(s) for s in listeners)


def _reload(app: web.Application, reload_settings: Callable[[], Settings] | None) -> None:
    app[VIEWS].reload()
    if reload_logging(reload_settings, "sleigh-web"):
        log.info("reloaded templates and logging; other settings apply after a restart")
    else:
        log.info("reloaded templates")


async def _drain(runner: web.AppRunner, signals: Signals, deadline: float) -> int:
    log.info("stopping: finishing requests in flight (at most %.3gs)", deadline)
    cleanup = asyncio.create_task(runner.cleanup())
    escalated = asyncio.create_task(signals.escalated())
    await asyncio.wait([cleanup, escalated], return_when=asyncio.FIRST_COMPLETED)
    escalated.cancel()
    if cleanup.done():
        cleanup.result()
        log.info("stopped")
        return 0
    cleanup.cancel()
    log.warning("second stop signal: closing connections now")
    return EXIT_ESCALATED
