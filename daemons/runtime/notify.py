"""The systemd notify protocol (``sd_notify``), in pure Python.

The service manager (or a test fixture) names a Unix datagram socket in
``NOTIFY_SOCKET``: a file system path, or ``@name`` for the abstract
namespace. Each notification is one datagram of newline-separated
``KEY=VALUE`` assignments (``READY=1``, ``STATUS=...``). When the variable
is unset every method here does nothing, so a daemon run by hand behaves
the same as one run by systemd.

Notifications are advisory: a failed send is logged at debug level and
never raised, so a vanished manager cannot take a daemon down.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Mapping

__all__ = ["Notifier", "watchdog_interval"]

log = logging.getLogger("sleigh.runtime.notify")


def _address(value: str) -> str | bytes:
    """The ``sendto`` address for a ``NOTIFY_SOCKET`` value (``@`` = abstract)."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value


class Notifier:
    """Sends notifications to the socket named by ``NOTIFY_SOCKET``, if any."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        """:param environ: the process environment, read once here."""
        target = environ.get("NOTIFY_SOCKET", "")
        self.address: str | bytes | None = _address(target) if target else None
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        """Whether a notify socket was named."""
        return self.address is not None

    def _socket(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            sock.setblocking(False)
            self._sock = sock
        return self._sock

    def send_raw(self, message: str) -> bool:
        """Send *message* as one datagram.

        :returns: ``True`` if it was sent, ``False`` if disabled or the send failed.
        """
        if self.address is None:
            return False
        try:
            self._socket().sendto(message.encode(), self.address)
        except OSError as exc:
            log.debug("notify %r to %r failed: %s", message, self.address, exc)
            return False
        return True

    def send(self, **fields: object) -> bool:
        """Send ``KEY=VALUE`` lines, one per keyword (``send(STATUS="warming")``)."""
        return self.send_raw("\n".join(f"{key}={value}" for key, value in fields.items()))

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: start-up is complete; *status* is shown by ``systemctl status``."""
        if status is None:
            return self.send(READY=1)
        return self.send(READY=1, STATUS=status)

    def reloading(self) -> bool:
        """``RELOADING=1`` with ``MONOTONIC_USEC``; send :meth:`ready` when done."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send(RELOADING=1, MONOTONIC_USEC=usec)

    def stopping(self) -> bool:
        """``STOPPING=1``: shutdown has begun."""
        return self.send(STOPPING=1)

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: the keep-alive ping."""
        return self.send(WATCHDOG=1)

    def status(self, text: str) -> bool:
        """``STATUS=text``: a one-line status for people."""
        return self.send(STATUS=text)

    def close(self) -> None:
        """Close the datagram socket; later sends open a new one."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval(environ: Mapping[str, str], *, pid: int | None = None) -> float | None:
    """How often to call :meth:`Notifier.watchdog`, in seconds, or ``None``.

    That is half of ``WATCHDOG_USEC``, as ``sd_watchdog_enabled`` advises.
    ``None`` when the variable is unset, not a positive integer, or when
    ``WATCHDOG_PID`` is set and names another process.

    :param pid: our process id; ``os.getpid()`` if ``None``.
    """
    usec = environ.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) <= 0:
        return None
    owner = environ.get("WATCHDOG_PID")
    if owner:
        me = os.getpid() if pid is None else pid
        if not owner.isdigit() or int(owner) != me:
            return None
    return int(usec) / 2_000_000


async def keep_watchdog(notifier: Notifier, interval: float) -> None:
    """Tell systemd's watchdog the event loop still turns, every *interval* seconds
    (run it as a task; cancel it to stop)."""
    while True:
        notifier.watchdog()
        await asyncio.sleep(interval)
