"""The life cycle of ``sleigh-mcastd``.

read the cluster secret (it must exist and be readable by the service
only) → take the positions a clean stop of the previous daemon left in
``run/mcastd.resume`` (each stream it delivered resumes where it stopped,
so nothing it applied is applied again over newer writes) → open the
multicast sockets (join the group on the interface) →
adopt ``LISTEN_FDS`` or bind the stats socket → subscribe to the cache's
feed and see a probe write come back on it (bounded: the cache may start
later) → ``READY=1`` → replicate (``SIGHUP`` re-reads the log settings) →
``STOPPING=1`` → stop taking local writes, send what is queued and answer
NAKs for ``replicator.drain_timeout`` at most (a second signal cuts it
short) → LEAVE → apply what was received → if all of it was applied, leave
the positions for the next daemon → close in reverse order → remove a
socket this process bound.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import secrets
import socket
import stat
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from ..control.launch import reload_logging
from ..control.settings import Settings
from ..runtime.memory import freeze_startup
from ..runtime.notify import Notifier, keep_watchdog, watchdog_interval
from ..runtime.signals import RELOAD, Signals
from ..runtime.sockets import bind_unix, listen_fds, remove_unix
from . import stats
from .config import ReplicatorConfig
from .engine import Node
from .errors import ReplicatorError
from .net import open_receiver, open_sender
from .server import Replicator

log = logging.getLogger("sleigh.replicator")

EXIT_ESCALATED = 1
#: How long start-up waits for the cache's feed to answer a probe write.
FEED_WAIT = 5.0
MIN_SECRET = 16


class SecretError(ReplicatorError):
    """The cluster secret file is missing, unsafe or too short."""


def read_secret(path: Path) -> bytes:
    """The cluster secret in *path* (surrounding white space stripped).

    :raises SecretError: if the file is missing, readable by group or others, or short.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise SecretError(
            f"cluster secret file {path} does not exist: create it with at least"
            f" {MIN_SECRET} random bytes and mode 0600 (e.g. `head -c 32 /dev/urandom | base64"
            f" > {path} && chmod 600 {path}`), the same on every host"
        ) from None
    except OSError as exc:
        raise SecretError(f"cannot read the cluster secret file {path}: {exc}") from exc
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SecretError(
                f"cluster secret file {path} has mode {stat.S_IMODE(mode):04o}: it must not be"
                f" readable by group or others (chmod 600 {path})"
            )
        secret = f.read().strip()
    if len(secret) < MIN_SECRET:
        raise SecretError(f"cluster secret in {path} is {len(secret)} bytes: at least {MIN_SECRET}")
    return secret


def open_stats(
    cfg: ReplicatorConfig, home: Path, environ: Mapping[str, str]
) -> tuple[socket.socket, Path | None]:
    """The stats socket: handed over, else bound here (and its path)."""
    adopted = listen_fds(environ)
    if adopted:
        return adopted[0], None
    path = cfg.socket_path(home)
    return bind_unix(path, mode=0o660), path


def make_node(
    cfg: ReplicatorConfig, secret: bytes, resume: Mapping[int, int] | None = None
) -> Node:
    """A node with a fresh random sender id: a restarted daemon is a new stream; it
    resumes the streams it hears at *resume* (see :func:`take_positions`)."""
    sender = secrets.randbits(64) or 1
    return Node(cfg, secret, sender_id=sender, now=time.time(), rng=random.Random(), resume=resume)


def positions_path(home: Path) -> Path:
    """Where a daemon that stops cleanly leaves, per stream, where it stopped delivering."""
    return home / "run" / "mcastd.resume"


def save_positions(path: Path, positions: Mapping[int, int]) -> None:
    """Write *positions* for the next daemon on this host (atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".new")
    temp.write_text(json.dumps({f"{s:016x}": n for s, n in positions.items()}))
    os.replace(temp, path)


def take_positions(path: Path) -> dict[int, int]:
    """The positions the previous daemon left (then removed: a crash after this start
    must not resume from them); none if it left none or they cannot be read."""
    try:
        text = path.read_text()
        path.unlink()
    except FileNotFoundError:
        return {}
    try:
        raw = json.loads(text)
        return {int(s, 16): int(n) for s, n in raw.items() if int(n) > 0}
    except (ValueError, AttributeError, TypeError) as exc:
        log.warning("ignored %s (%s): every stream is joined as if new", path, exc)
        return {}


async def serve(
    settings: Settings,
    environ: Mapping[str, str],
    reload_settings: Callable[[], Settings] | None = None,
) -> int:
    """Run the replicator until it is told to stop; the exit status."""
    cfg = settings.replicator
    secret = read_secret(cfg.secret_path(settings.home))
    resume = take_positions(positions_path(settings.home))
    if resume:
        log.info("resuming %d streams where the previous daemon stopped", len(resume))
    node = make_node(cfg, secret, resume)
    recv_sock = open_receiver(cfg)
    try:
        send_sock = open_sender(cfg)
    except BaseException:
        recv_sock.close()
        raise
    try:
        listener, bound = open_stats(cfg, settings.home, environ)
    except BaseException:
        recv_sock.close()
        send_sock.close()
        raise
    replicator = Replicator(
        node,
        send_sock,
        recv_sock,
        feed_path=settings.cache.publish_path(settings.home),
        cache_socket=settings.cache.socket_path(settings.home),
        mtu_payload=cfg.mtu_payload,
        receive_path=cfg.receive_path,
    )
    return await _run(settings, environ, reload_settings, replicator, listener, bound)


async def _run(
    settings: Settings,
    environ: Mapping[str, str],
    reload_settings: Callable[[], Settings] | None,
    replicator: Replicator,
    listener: socket.socket,
    bound: Path | None,
) -> int:
    cfg = settings.replicator
    notifier = Notifier(environ)
    replicator.start()
    server = await stats.serve(listener, replicator.snapshot)
    interval = watchdog_interval(environ)
    pinger = asyncio.create_task(keep_watchdog(notifier, interval)) if interval else None
    try:
        with Signals() as signals:
            if not await replicator.wait_feed(FEED_WAIT):
                log.warning("the cache's feed did not answer yet; local writes wait for it")
            status = f"sender {replicator.node.sender_id:016x} on {cfg.group}:{cfg.port}"
            log.info("replicating: %s via %s", status, cfg.interface)
            await _until_stop(signals, notifier, status, reload_settings)
            escalated = asyncio.ensure_future(signals.escalated())
            draining = asyncio.ensure_future(replicator.drain(cfg.drain_timeout))
            await asyncio.wait([draining, escalated], return_when="FIRST_COMPLETED")
            draining.cancel()
            escalated.cancel()
            server.close()
            if bound is not None:
                remove_unix(bound, listener)
            await replicator.close(0 if signals.stops >= 2 else cfg.drain_timeout)
            if replicator.applied_all:
                save_positions(positions_path(settings.home), replicator.node.positions())
            return EXIT_ESCALATED if signals.stops >= 2 else 0
    finally:
        if pinger is not None:
            pinger.cancel()
        notifier.close()
        log.info("stopped")


async def _until_stop(
    signals: Signals,
    notifier: Notifier,
    status: str,
    reload_settings: Callable[[], Settings] | None,
) -> None:
    freeze_startup()
    notifier.ready(status)
    while await signals.wait() == RELOAD:
        notifier.reloading()
        if reload_logging(reload_settings, "sleigh-mcastd"):
            log.info("reloaded the log settings; other settings apply after a restart")
        notifier.ready(status)
    notifier.stopping()
