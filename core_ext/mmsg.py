"""Batched datagram receive and send for ``sleigh-mcastd``.

:class:`BatchSocket` wraps a UDP socket: :meth:`~BatchSocket.recv_batch`
blocks for the first datagram, then takes every one already queued (up to
``MAX``); :meth:`~BatchSocket.send_batch` sends datagrams on a connected
non-blocking socket until they are all gone or the send buffer is full (a
socket with a timeout is not supported: it is blocking or not). Two
implementations keep one contract, checked by the same tests:
:class:`BatchSocketPython` (one ``recv``/``send`` per datagram) and
:class:`BatchSocketNative` (cffi: ``recvmmsg``/``sendmmsg``, one system call
and one GIL hand-off per batch). :data:`NATIVE` says which
:data:`BatchSocket` is; ``SLEIGH_NO_EXTENSIONS=1`` forces the twin.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Sequence

from . import compiled

__all__ = ["MAX", "NATIVE", "BatchSocket", "BatchSocketNative", "BatchSocketPython"]


#: Datagrams one call moves at most.
MAX = 256


class BatchSocketPython:
    """The twin: one system call per datagram.

    :param slot: bytes read per datagram at most (a longer one is cut).
    """

    def __init__(self, sock: socket.socket, slot: int) -> None:
        self.sock = sock
        self.slot = slot

    def recv_batch(self) -> list[bytes]:
        """The next datagrams (blocking for the first when the socket blocks).

        An empty list: the socket was shut down.

        :raises OSError: as ``recv`` does (``BlockingIOError`` if nothing waits on
            a non-blocking socket).
        """
        sock, slot = self.sock, self.slot
        first = sock.recv(slot)
        if not first:
            return []
        batch = [first]
        for _ in range(MAX - 1):
            try:
                data = sock.recv(slot, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            if not data:
                break
            batch.append(data)
        return batch

    def send_batch(self, datagrams: Sequence[bytes]) -> int:
        """Send from the start of *datagrams*; how many went (fewer: the buffer is full).

        :raises OSError: when the first cannot go for another reason than a full buffer.
        """
        send = self.sock.send
        for i, data in enumerate(datagrams):
            try:
                send(data)
            except BlockingIOError:
                return i
            except OSError:
                if i:
                    return i
                raise
        return len(datagrams)


class BatchSocketNative:
    """``recvmmsg``/``sendmmsg`` through cffi (the same contract as the twin)."""

    def __init__(self, sock: socket.socket, slot: int) -> None:
        from ._mmsg import ffi, lib

        self.sock = sock
        self.slot = slot
        self._lib = lib
        self._ffi = ffi
        self._buf = ffi.new("uint8_t[]", slot * MAX)
        self._view = ffi.buffer(self._buf)
        self._lens = ffi.new("int32_t[]", MAX)
        self._send_lens = ffi.new("int32_t[]", MAX)

    def recv_batch(self) -> list[bytes]:
        """See :meth:`BatchSocketPython.recv_batch`."""
        got = self._lib.sleigh_recv_batch(self.sock.fileno(), self._buf, self.slot, MAX, self._lens)
        if got < 0:
            raise _error(-got)
        view, lens, slot = self._view, self._lens, self.slot
        batch = [view[i * slot : i * slot + lens[i]] for i in range(got)]
        if batch and not batch[0]:  # shut down: recvmmsg reports one empty datagram
            return []
        return batch

    def send_batch(self, datagrams: Sequence[bytes]) -> int:
        """See :meth:`BatchSocketPython.send_batch`."""
        fd, lib, lens, done = self.sock.fileno(), self._lib, self._send_lens, 0
        while done < len(datagrams):
            part = datagrams[done : done + MAX]
            for i, data in enumerate(part):
                lens[i] = len(data)
            sent = lib.sleigh_send_batch(fd, b"".join(part), lens, len(part))
            if sent < 0:
                if sent == -errno.EAGAIN or done:
                    return done
                raise _error(-sent)
            done += sent
            if sent < len(part):
                return done
        return done


def _error(code: int) -> OSError:
    if code in (errno.EAGAIN, errno.EWOULDBLOCK):
        return BlockingIOError(code, os.strerror(code))
    return OSError(code, os.strerror(code))


#: True when :data:`BatchSocket` is the compiled implementation.
NATIVE = compiled("_mmsg", "mmsg") is not None
#: The implementation in use.
BatchSocket: type[BatchSocketPython] | type[BatchSocketNative] = (
    BatchSocketNative if NATIVE else BatchSocketPython
)
