"""A tiny echo daemon built only from ``sleigh.daemons.runtime``, for tests.

Run as ``python -m tests.runtime.demo_daemon [--socket PATH] [--drain SECONDS]``
from the repository root. It follows the lifecycle every sleigh daemon
follows, so the tests of the plugin and of the runtime exercise it for real:

1. install signal handlers (before anything can be signalled);
2. adopt the sockets passed in ``LISTEN_FDS``, else bind ``--socket``;
3. echo every line each client sends; send ``READY=1``;
4. SIGHUP: send ``RELOADING=1``, log ``reloaded``, send ``READY=1``;
5. SIGTERM or SIGINT: send ``STOPPING=1``, remove the Unix socket file it
   bound itself (while the socket is open, see ``remove_unix``), stop
   accepting, wait for the clients to hang up, at most ``--drain`` seconds,
   then cut off the rest;
6. exit.

Socket ownership (systemd's rule, and the project's): **a daemon removes
only the Unix socket files it bound itself. A socket handed over through
``LISTEN_FDS`` belongs to whoever bound it** (systemd's ``.socket`` unit,
``sleigh up``'s supervisor, or the test fixture), which keeps it across
restarts of the daemon and removes it itself. Unlinking an adopted socket
would break the next socket activation, and ``sleigh up`` hands one socket
to several web workers, any of which may be restarted.

Exit codes: ``0`` after a stop (drained, or cut off at the deadline);
``1`` when a second stop signal arrives during the drain (escalation:
clients are cut off at once); ``2`` when it cannot listen.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

from sleigh.daemons.runtime.config import ConfigError, load_section
from sleigh.daemons.runtime.logs import LoggingConfig, setup_logging
from sleigh.daemons.runtime.notify import Notifier
from sleigh.daemons.runtime.signals import RELOAD, Signals
from sleigh.daemons.runtime.sockets import (
    RuntimeSocketError,
    UnixListener,
    bind_unix,
    listen_fds,
    remove_unix,
)

log = logging.getLogger("sleigh.demo")

EXIT_OK = 0
EXIT_ESCALATED = 1
EXIT_CANNOT_LISTEN = 2


class EchoService:
    """Echoes lines; tracks its connections so a stop can drain them."""

    def __init__(self) -> None:
        self.connections: set[asyncio.StreamWriter] = set()
        self.idle = asyncio.Event()
        self.idle.set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one client until it hangs up or is cut off."""
        self.connections.add(writer)
        self.idle.clear()
        try:
            while line := await reader.readline():
                writer.write(line)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            self.connections.discard(writer)
            if not self.connections:
                self.idle.set()

    async def cut_off(self) -> None:
        """Close every remaining connection now and wait for their handlers to end.

        Aborting the transport ends a handler's ``readline`` with end of file;
        cancelling the handler task instead makes asyncio 3.11 log a traceback.
        """
        for writer in list(self.connections):
            writer.transport.abort()
        await self.idle.wait()


async def _listen(service: EchoService, socks: list[socket.socket]) -> list[asyncio.Server]:
    servers = []
    for sock in socks:
        if sock.family == socket.AF_UNIX:
            servers.append(await asyncio.start_unix_server(service.handle, sock=sock))
        else:
            servers.append(await asyncio.start_server(service.handle, sock=sock))
    return servers


async def _drain(service: EchoService, sigs: Signals, deadline: float) -> int:
    """Wait for the clients to leave, racing a second stop signal and the deadline."""
    drained = asyncio.create_task(service.idle.wait())
    escalated = asyncio.create_task(sigs.escalated())
    done, pending = await asyncio.wait(
        {drained, escalated}, timeout=deadline, return_when=asyncio.FIRST_COMPLETED
    )
    for task in pending:
        task.cancel()
    if escalated in done:
        log.warning("second stop signal: cutting off %d connections", len(service.connections))
        await service.cut_off()
        return EXIT_ESCALATED
    if drained not in done:
        log.warning("drain deadline passed: cutting off %d connections", len(service.connections))
        await service.cut_off()
    return EXIT_OK


def _sockets(
    args: argparse.Namespace, environ: Mapping[str, str]
) -> tuple[list[socket.socket], list[socket.socket]]:
    """The sockets to serve on, and those of them this process bound (and so removes).

    Sockets adopted from ``LISTEN_FDS`` belong to whoever bound them: never ours.

    :raises RuntimeSocketError: if a passed fd is not a socket or ``--socket`` fails.
    """
    adopted = listen_fds(environ)
    if adopted:
        return adopted, []
    if args.socket is None:
        return [], []
    bound = [bind_unix(args.socket)]
    return bound, bound


async def serve(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """The daemon's whole life; returns the exit code."""
    notifier = Notifier(environ)
    service = EchoService()
    with Signals() as sigs:
        try:
            socks, owned = _sockets(args, environ)
        except RuntimeSocketError as exc:
            log.error("cannot listen: %s", exc)
            return EXIT_CANNOT_LISTEN
        if not socks:
            log.error("no socket: pass --socket PATH or LISTEN_FDS")
            return EXIT_CANNOT_LISTEN
        servers = await _listen(service, socks)
        notifier.ready(status=f"echoing on {len(socks)} sockets")
        log.info("ready, pid %d", os.getpid())
        while await sigs.wait() == RELOAD:
            notifier.reloading()
            log.info("reloaded")
            notifier.ready(status="reloaded")
        notifier.stopping()
        log.info("stopping: draining %d connections", len(service.connections))
        for sock in owned:
            if isinstance(sock, UnixListener) and sock.bound_path is not None:
                remove_unix(sock.bound_path, sock)
        for server in servers:
            server.close()
        code = await _drain(service, sigs, args.drain)
    notifier.close()
    log.info("stopped with exit code %d", code)
    return code


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Parse *argv*, set up logging from *environ*, run the daemon."""
    parser = argparse.ArgumentParser(prog="demo_daemon", description="An echo daemon for tests.")
    parser.add_argument("--socket", type=Path, help="bind here when no LISTEN_FDS is given")
    parser.add_argument("--drain", type=float, default=30.0, help="drain deadline, seconds")
    args = parser.parse_args(argv)
    environ = os.environ if environ is None else environ
    try:
        logging_cfg = load_section(LoggingConfig, {}, environ)
    except ConfigError as exc:
        sys.stderr.write(f"demo_daemon: {exc}\n")
        return EXIT_CANNOT_LISTEN
    setup_logging(logging_cfg, program="demo_daemon")
    return asyncio.run(serve(args, environ))


if __name__ == "__main__":
    raise SystemExit(main())
