"""The stats socket of ``sleigh-mcastd``: a Unix stream socket that answers JSON.

A client connects and sends one line, ``STATS``; the daemon answers with
one line of JSON (every counter: the node's, per peer, and the daemon's)
and closes. Anything else gets ``{"error": ...}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import ReplicatorError

log = logging.getLogger("sleigh.replicator.stats")

Snapshot = Callable[[], dict[str, object]]


class StatsUnavailable(ReplicatorError):
    """The daemon's stats socket did not answer."""


async def serve(sock: socket.socket, snapshot: Snapshot) -> asyncio.AbstractServer:
    """Answer ``STATS`` on the listening Unix socket *sock*."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5.0)
            if line.strip().upper() == b"STATS":
                body: dict[str, object] = snapshot()
            else:
                body = {"error": "send STATS and a newline"}
            writer.write(json.dumps(body, default=str).encode() + b"\n")
            await writer.drain()
        except (OSError, TimeoutError) as exc:
            log.debug("stats client went away: %s", exc)
        finally:
            writer.close()

    return await asyncio.start_unix_server(answer, sock=sock)


def fetch(path: Path, timeout: float = 2.0) -> dict[str, Any]:
    """The daemon's counters (blocking).

    :raises StatsUnavailable: if nothing answers at *path*.
    """
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(b"STATS\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    except OSError as exc:
        raise StatsUnavailable(f"sleigh-mcastd does not answer at {path}: {exc}") from exc
    try:
        data = json.loads(b"".join(chunks))
    except ValueError as exc:
        raise StatsUnavailable(f"sleigh-mcastd at {path} answered garbage: {exc}") from exc
    if not isinstance(data, dict):
        raise StatsUnavailable(f"sleigh-mcastd at {path} answered garbage")
    return data
