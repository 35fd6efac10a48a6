"""The client ``sleigh-mcastd`` applies peers' writes with.

One asyncio connection to ``sleigh-cached`` that first says ``CLIENT
REPLICATED ON``: everything written on it is committed like any write but
never published again, so a write crosses the network once. Writes go
pipelined, a batch per call, with absolute expiries (``SET ... PXAT``,
``PEXPIREAT``), so a write applied late expires when it did at its origin.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path

import hiredis

from .errors import CacheError
from .feed import DELETE, EXPIRE, SET, Write
from .pipe import encode_command

log = logging.getLogger("sleigh.cache.replica")


class ReplicaUnavailable(CacheError):
    """The cache daemon could not be reached, or closed the connection."""


def command(write: Write) -> bytes:
    """The RESP command that applies *write* (one formatting per command: it runs per write)."""
    kind, key = write.kind, write.key
    if kind == SET:
        value = write.value
        assert value is not None
        if write.expires_ms:
            at = b"%d" % write.expires_ms
            return b"*5\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n$4\r\nPXAT\r\n$%d\r\n%b\r\n" % (
                len(key), key, len(value), value, len(at), at)  # fmt: skip
        return b"*3\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (
            len(key), key, len(value), value)  # fmt: skip
    if kind == DELETE:
        return b"*2\r\n$3\r\nDEL\r\n$%d\r\n%b\r\n" % (len(key), key)
    if kind == EXPIRE:
        at = b"%d" % write.expires_ms
        return b"*3\r\n$9\r\nPEXPIREAT\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (
            len(key), key, len(at), at)  # fmt: skip
    return b"*1\r\n$7\r\nFLUSHDB\r\n"


class ReplicaWriter:
    """Applies batches of :class:`~.feed.Write` to the local cache, marked replicated.

    :param socket_path: the cache daemon's Unix socket.
    :param timeout: seconds to connect and to wait for a batch's replies.
    """

    def __init__(self, socket_path: Path, *, timeout: float = 5.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self.applied = 0
        self.refused = 0  # writes the cache answered with an error (full, too large)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._parser = hiredis.Reader()

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def connect(self) -> None:
        """Connect and mark the connection replicated.

        :raises ReplicaUnavailable: if the daemon does not answer.
        """
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_unix_connection(str(self.socket_path)), self.timeout
            )
        except (OSError, TimeoutError) as exc:
            raise ReplicaUnavailable(
                f"cannot reach sleigh-cached at {self.socket_path}: {exc}"
            ) from exc
        self._parser = hiredis.Reader()
        hello = encode_command((b"CLIENT", b"SETNAME", b"sleigh-mcastd")) + encode_command(
            (b"CLIENT", b"REPLICATED", b"ON")
        )
        replies = await self._exchange(hello, 2)
        for reply in replies:
            if isinstance(reply, hiredis.ReplyError):
                await self.close()
                raise ReplicaUnavailable(f"sleigh-cached refused the replica connection: {reply}")

    async def apply(self, writes: Sequence[Write]) -> int:
        """Apply *writes* in order, pipelined; how many the cache refused.

        :raises ReplicaUnavailable: if the connection fails (reconnect and retry).
        """
        if not writes:
            return 0
        if not self.connected:
            await self.connect()
        replies = await self._exchange(b"".join([command(w) for w in writes]), len(writes))
        refused = sum(isinstance(r, hiredis.ReplyError) for r in replies)
        if refused:
            log.warning("sleigh-cached refused %d of %d replicated writes", refused, len(writes))
        self.applied += len(writes) - refused
        self.refused += refused
        return refused

    async def _exchange(self, payload: bytes, count: int) -> list[object]:
        reader, writer = self._reader, self._writer
        assert reader is not None and writer is not None
        try:
            writer.write(payload)
            return await asyncio.wait_for(self._replies(reader, count), self.timeout)
        except (OSError, TimeoutError, EOFError) as exc:
            await self.close()
            raise ReplicaUnavailable(f"lost sleigh-cached at {self.socket_path}: {exc}") from exc

    async def _replies(self, reader: asyncio.StreamReader, count: int) -> list[object]:
        parser = self._parser
        replies: list[object] = []
        while len(replies) < count:
            reply = parser.gets()
            if reply is not False:
                replies.append(reply)
                continue
            data = await reader.read(262_144)
            if not data:
                raise EOFError("connection closed")
            parser.feed(data)
        return replies

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
