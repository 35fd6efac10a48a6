"""Hand listening sockets to a child process the way systemd does.

The child finds them as fds 3, 4, … with ``LISTEN_FDS`` (their count) and
``LISTEN_PID`` (its own pid, so a grandchild never adopts them by mistake).
The pid is not known before the fork, so the child is started through
``/bin/sh``, which sets ``LISTEN_PID=$$`` and then ``exec``\\ s the real
program under that same pid.

The sockets are placed by a ``preexec_fn`` and the child keeps its other
descriptors closed through ``O_CLOEXEC`` (every descriptor Python opens is
non-inheritable), not through ``close_fds``: ``subprocess`` closes
descriptors *after* ``preexec_fn`` runs, which would close the placed ones.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["SD_LISTEN_FDS_START", "activation_kwargs"]

SD_LISTEN_FDS_START = 3

_SHIM = 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"'


def _placer(fds: Sequence[int]) -> Callable[[], None]:
    """A ``preexec_fn`` that puts *fds* at 3, 4, … in the child, inheritable
    (``dup2`` makes them so); the originals close on ``exec``."""

    def place() -> None:
        # Copy above the target range first, so no source is overwritten early.
        above = SD_LISTEN_FDS_START + len(fds)
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, above) for fd in fds]
        for i, fd in enumerate(high):
            os.dup2(fd, SD_LISTEN_FDS_START + i)
            os.close(fd)
        for fd in fds:
            if fd >= above:
                os.close(fd)

    return place


def activation_kwargs(
    argv: Sequence[str],
    sockets: Sequence[socket.socket],
    environ: Mapping[str, str],
    *,
    names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``subprocess.Popen`` (or asyncio's) that start *argv*
    with *sockets* handed over.

    :param environ: the child's environment, to which ``LISTEN_*`` is added.
    :param names: optional ``LISTEN_FDNAMES``, one per socket.
    """
    env = {k: v for k, v in environ.items() if not k.startswith("LISTEN_")}
    env["LISTEN_FDS"] = str(len(sockets))
    if names is not None:
        env["LISTEN_FDNAMES"] = ":".join(names)
    fds = [s.fileno() for s in sockets]
    return {
        "args": ["/bin/sh", "-c", _SHIM, "sh", *argv],
        "env": env,
        "close_fds": False,
        "preexec_fn": _placer(fds),
    }
