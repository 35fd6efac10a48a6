"""The client ``sleigh-mcastd`` applies peers' writes with.

One pipelined connection to ``sleigh-cached`` (:class:`~.pipe.RespPipe`)
that first says ``CLIENT REPLICATED ON``, and says it again on every
reconnect: everything written on it is committed like any write but never
published again, so a write crosses the network once. Writes go pipelined,
a batch per call, with absolute expiries (``SET ... PXAT``, ``PEXPIREAT``),
so a write applied late expires when it did at its origin.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import hiredis

from .errors import CacheError
from .feed import DELETE, EXPIRE, SET, Write
from .pipe import RespPipe

#: What a replica connection says first: its name, and that its writes are not published.
HELLO = ((b"CLIENT", b"SETNAME", b"sleigh-mcastd"), (b"CLIENT", b"REPLICATED", b"ON"))

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
        self.applied = 0
        self.refused = 0  # writes the cache answered with an error (full, too large)
        self._pipe = RespPipe(socket_path, timeout=timeout, hello=HELLO)

    async def apply(self, writes: Sequence[Write]) -> int:
        """Apply *writes* in order, pipelined; how many the cache refused.

        :raises ReplicaUnavailable: if the connection fails (retry: the next call
            connects again, and marks the new connection replicated first).
        """
        if not writes:
            return 0
        try:
            replies = await self._pipe.call(b"".join([command(w) for w in writes]), len(writes))
        except (ConnectionError, TimeoutError) as exc:
            raise ReplicaUnavailable(f"lost sleigh-cached at {self.socket_path}: {exc}") from exc
        refused = sum(isinstance(r, hiredis.ReplyError) for r in replies)
        if refused:
            log.warning("sleigh-cached refused %d of %d replicated writes", refused, len(writes))
        self.applied += len(writes) - refused
        self.refused += refused
        return refused

    async def close(self) -> None:
        await self._pipe.aclose()
