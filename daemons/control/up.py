"""``sleigh up``: the whole shop in the foreground, on one home.

Migrates the database (and loads the demo catalog into an empty one),
binds the web socket once and hands it to every web worker (or, with the
front tier, binds the shop's address for nginx and a Unix socket for the
workers behind it: :mod:`.front`), prints the address, and on Ctrl-C or
SIGTERM stops everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TextIO

import sqlalchemy as sa

from ...webapp.db import schema
from ...webapp.db.engine import create_engine, database_url, redacted
from ...webapp.db.migrate import upgrade
from ...webapp.demo.catalog import load_demo
from ...webapp.service import describe
from ..runtime.signals import Signals
from ..runtime.sockets import bind_tcp, bind_unix, remove_unix
from . import cache_cmd, replication_cmd, search_cmd, throttle_cmd
from .front import Front, choose_nginx
from .settings import Settings
from .supervisor import Child, ChildFailed, Supervisor

log = logging.getLogger("sleigh.up")


def state_file(home: Path) -> Path:
    """Where a running ``sleigh up`` records its pid and addresses."""
    return home / "run" / "up.json"


async def prepare_database(settings: Settings, demo_products: int, out: TextIO) -> None:
    """Create or migrate the database; load the demo catalog if it has no products."""
    engine = create_engine(settings.database, settings.home)
    try:
        url = redacted(database_url(settings.database, settings.home))
        print(f"database: {url}", file=out, flush=True)
        await upgrade(engine)
        async with engine.connect() as conn:
            count = (
                await conn.execute(sa.select(sa.func.count()).select_from(schema.products))
            ).scalar_one()
        if count == 0 and demo_products > 0:
            print(f"loading the demo catalog ({demo_products:,} products)...", file=out, flush=True)
            report = await load_demo(engine, products=demo_products)
            print(
                f"loaded {report.products_added:,} products in {report.seconds:.1f}s",
                file=out,
                flush=True,
            )
    finally:
        await engine.dispose()


def bind_web(settings: Settings) -> tuple[socket.socket, Path | None]:
    """The web tier's listening socket, bound once for every worker."""
    cfg = settings.web
    path = cfg.socket_path(settings.home)
    if path is not None:
        return bind_unix(path, mode=0o666), path
    return bind_tcp(cfg.host, cfg.port), None


def children(
    settings: Settings, web_socket: socket.socket, workers: int, front: Front | None = None
) -> list[Child]:
    """Every process of the shop, in the order they start (and the reverse of
    the order they stop): the daemons first, then the web workers, then nginx."""
    daemons = [
        cache_cmd.child(settings),
        replication_cmd.child(settings),
        throttle_cmd.child(settings),
        search_cmd.child(settings),
    ]
    web = settings.program_argv("sleigh.webapp")
    env = {} if front is None else front.worker_env()
    tier = [Child(f"web#{i + 1}", web, [web_socket], env=env) for i in range(workers)]
    return [*daemons, *tier, *([] if front is None else [front.child()])]


def bind_all(
    settings: Settings, nginx: str | None
) -> tuple[socket.socket, socket.socket, Path | None, Front | None]:
    """The shop's address, the workers' socket (the same, without a front tier), the
    Unix socket path to remove at the end, and the front tier."""
    if nginx is None:
        sock, unix_path = bind_web(settings)
        return sock, sock, unix_path, None
    listening = bind_tcp(settings.web.host, settings.web.port)
    front = Front(settings, nginx, listening)
    try:
        return listening, front.bind_app(), front.app_path, front
    except BaseException:
        listening.close()
        raise


async def run_up(
    settings: Settings,
    environ: Mapping[str, str],
    *,
    demo_products: int,
    workers: int | None = None,
    front: str = "off",
    nginx: str | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Run the shop until a stop signal; the exit status.

    :raises FrontError: the front tier was asked for and cannot run (nothing started).
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    nginx_path = choose_nginx(front, nginx, environ, out)
    await prepare_database(settings, demo_products, out)
    replication_cmd.ensure_secret(settings)
    await search_cmd.prepare(settings, out)
    listening, sock, unix_path, tier = bind_all(settings, nginx_path)
    try:
        status = await _run(settings, environ, (listening, sock), tier, workers, out)
    finally:
        sock.close()
        listening.close()
        if unix_path is not None:
            remove_unix(unix_path)
        with contextlib.suppress(FileNotFoundError):
            state_file(settings.home).unlink()
    print("stopped", file=out, flush=True)
    return status


async def _run(
    settings: Settings,
    environ: Mapping[str, str],
    sockets: tuple[socket.socket, socket.socket],
    tier: Front | None,
    workers: int | None,
    out: TextIO,
) -> int:
    """Run the shop's processes on *sockets* (the shop's address, the workers'), with the
    front *tier* if any, until a stop signal; the exit status."""
    address, app = (describe(s) for s in sockets)
    processes = children(settings, sockets[1], workers or settings.web.workers, tier)
    if tier is not None:
        print(
            f"front: nginx keeps public pages for their max-age (requests in"
            f" {tier.run / 'access.log'}); the web workers listen on {tier.app_address}",
            file=out,
            flush=True,
        )

    def record() -> None:
        _write_state(settings, address, app, processes)

    supervisor = Supervisor(
        processes,
        environ,
        stop_timeout=settings.web.shutdown_timeout + 5,
        on_restart=record,
    )
    return await _supervise(supervisor, record, address, out)


async def _supervise(
    supervisor: Supervisor, record: Callable[[], None], address: str, out: TextIO
) -> int:
    """Start every child, watch them until a stop signal, stop them; the exit status."""
    status = 0
    with Signals() as signals:
        stop = asyncio.ensure_future(signals.wait())
        starting = asyncio.ensure_future(supervisor.start())
        await asyncio.wait({stop, starting}, return_when="FIRST_COMPLETED")
        try:
            if not stop.done():
                await starting
                record()
                print(f"sleigh is up: {address}  (Ctrl-C stops it)", file=out, flush=True)
                await supervisor.watch(stop)
        except ChildFailed as exc:
            log.error("%s", exc)
            status = 1
        finally:
            stop.cancel()
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, ChildFailed):
                await starting
            print("stopping...", file=out, flush=True)
            statuses = await supervisor.stop()
    if any(code not in (0, None) for code in statuses.values()):
        status = status or 1
    return status


def _write_state(settings: Settings, address: str, app: str, processes: list[Child]) -> None:
    """``run/up.json``: the shop's *address*, the workers' (*app*, the same without a
    front tier), the front's and every child's pid."""
    path = state_file(settings.home)
    path.parent.mkdir(parents=True, exist_ok=True)
    nginx = next((c.pid for c in processes if c.program == "nginx"), None)
    state = {
        "pid": os.getpid(),
        "started": time.time(),
        "web": {
            "address": app,
            "workers": [c.pid for c in processes if c.program == "web"],
        },
        "front": None if nginx is None else {"address": address, "pid": nginx},
        "cache": {
            "address": f"unix:{settings.cache.socket_path(settings.home)}",
            "pid": next(c.pid for c in processes if c.program == "cached"),
        },
        "daemons": {c.name: c.pid for c in processes if c.program != "web"},
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(path)
