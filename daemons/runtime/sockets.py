"""Listening sockets: bind a Unix or TCP socket, or adopt systemd's (``LISTEN_FDS``).

Unix socket files are handled with care, because they outlive processes:

* an existing path is reused only if it is a socket nobody answers on
  (a *stale* socket, left by a process that died); a socket something
  listens on raises :class:`SocketInUse`; anything that is not a socket
  raises :class:`NotASocket` and is never removed;
* the socket is bound under umask ``0o177``, so it never exists with
  looser permissions than the ``mode`` it is then given;
* :func:`remove_unix` removes the file on shutdown only if it is still
  the socket this process bound (same device and inode), so a daemon
  that was replaced never deletes its successor's socket.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import http.client
import logging
import os
import socket
import stat
from collections.abc import Mapping
from pathlib import Path

from ...errors import SleighError

__all__ = [
    "SD_LISTEN_FDS_START",
    "UNIX_PATH_MAX",
    "NotASocket",
    "RuntimeSocketError",
    "SocketInUse",
    "SocketPathTooLong",
    "UnixHTTPConnection",
    "UnixListener",
    "addresses",
    "bind_tcp",
    "bind_unix",
    "listen_fdnames",
    "listen_fds",
    "open_listeners",
    "remove_unix",
]

log = logging.getLogger("sleigh.runtime.sockets")

SD_LISTEN_FDS_START = 3
#: ``sizeof(sun_path) - 1`` on Linux: the longest path ``bind`` accepts.
UNIX_PATH_MAX = 107


class RuntimeSocketError(SleighError):
    """A listening socket could not be bound or adopted."""


class SocketInUse(RuntimeSocketError):
    """Something already listens at the address: another instance is running."""


class NotASocket(RuntimeSocketError):
    """The socket path names something that is not a socket; it was left alone."""


class SocketPathTooLong(RuntimeSocketError):
    """The Unix socket path does not fit in ``sun_path``."""


class UnixListener(socket.socket):
    """A listening Unix socket that remembers the file it was bound to.

    ``bound_path`` and ``bound_id`` (``(st_dev, st_ino)`` of the socket
    file right after ``bind``) let :func:`remove_unix` tell our socket
    file from one another process bound at the same path later.
    """

    bound_path: Path | None = None
    bound_id: tuple[int, int] | None = None


def _check_length(path: Path) -> None:
    size = len(os.fsencode(path))
    if size > UNIX_PATH_MAX:
        raise SocketPathTooLong(
            f"Unix socket path {str(path)!r} is {size} bytes; the limit is {UNIX_PATH_MAX}: "
            "choose a shorter path (for example under /run/sleigh)"
        )


def _answers(path: Path) -> bool:
    """Whether something accepts connections on the socket file at *path*."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(os.fspath(path))
        except (ConnectionRefusedError, FileNotFoundError):
            return False
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EPROTOTYPE, errno.ETIMEDOUT):
                return True  # a full backlog, or a datagram socket: alive either way
            if isinstance(exc, TimeoutError):
                return True
            raise RuntimeSocketError(f"cannot probe socket {path}: {exc.strerror}") from exc
        return True


def _clear_stale(path: Path) -> None:
    """Remove *path* if it is a stale socket; raise if it must be left alone."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise NotASocket(f"{path} exists and is not a socket; refusing to replace it")
    if _answers(path):
        raise SocketInUse(f"{path}: another process is listening on this socket")
    log.warning("removing stale socket %s (nothing listens on it)", path)
    path.unlink(missing_ok=True)


def _gid(group: str) -> int:
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        if group.isdigit():
            return int(group)
        raise RuntimeSocketError(f"no such group {group!r} for the socket") from None


def bind_unix(
    path: Path,
    *,
    mode: int = 0o660,
    group: str | None = None,
    backlog: int = 1024,
) -> socket.socket:
    """Bind and listen on a Unix stream socket at *path*.

    :param mode: the file mode the socket gets once bound.
    :param group: a group name (or number) to give the socket file.
    :returns: a listening, non-blocking :class:`UnixListener`.
    :raises SocketPathTooLong: if *path* does not fit in ``sun_path``.
    :raises SocketInUse: if something listens at *path* already.
    :raises NotASocket: if *path* exists and is not a socket.
    :raises RuntimeSocketError: if the group is unknown or ``bind`` fails.
    """
    path = Path(path)
    _check_length(path)
    if not path.parent.is_dir():
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        os.chmod(path.parent, 0o755)  # mkdir's mode is narrowed by the umask
    _clear_stale(path)
    gid = _gid(group) if group is not None else None
    sock = UnixListener(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        old_umask = os.umask(0o177)
        try:
            sock.bind(os.fspath(path))
        finally:
            os.umask(old_umask)
        st = path.lstat()
        sock.bound_path, sock.bound_id = path, (st.st_dev, st.st_ino)
        if gid is not None:
            os.chown(path, -1, gid)
        os.chmod(path, mode)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if sock.bound_id is not None:
            path.unlink(missing_ok=True)
        if exc.errno == errno.EADDRINUSE:
            raise SocketInUse(f"{path}: address already in use") from exc
        raise RuntimeSocketError(f"cannot listen on {path}: {exc.strerror or exc}") from exc
    log.debug("listening on %s (mode 0%o)", path, mode)
    return sock


def bind_tcp(host: str, port: int, *, backlog: int = 1024) -> socket.socket:
    """Bind and listen on a TCP socket; IPv4 or IPv6 follows *host*.

    :param host: an address or name; ``""`` means every IPv4 address.
    :param port: the port; ``0`` lets the kernel choose (see ``getsockname``).
    :returns: a listening, non-blocking socket with ``SO_REUSEADDR`` set.
    :raises SocketInUse: if the address is taken.
    :raises RuntimeSocketError: if *host* does not resolve or ``bind`` fails.
    """
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise RuntimeSocketError(f"cannot resolve listen address {host!r}: {exc}") from exc
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise SocketInUse(f"{host}:{port}: address already in use") from exc
        raise RuntimeSocketError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    return sock


def _fd_count(environ: Mapping[str, str], pid: int | None) -> int:
    """``LISTEN_FDS`` if ``LISTEN_PID`` is this process, else 0."""
    me = os.getpid() if pid is None else pid
    listen_pid = environ.get("LISTEN_PID", "")
    count = environ.get("LISTEN_FDS", "")
    if not listen_pid.isdigit() or int(listen_pid) != me or not count.isdigit():
        return 0
    return int(count)


def listen_fds(environ: Mapping[str, str], *, pid: int | None = None) -> list[socket.socket]:
    """Adopt the sockets a service manager passed (socket activation).

    The sockets are fds 3, 4, ... ``LISTEN_FDS`` of them, meant for us only
    if ``LISTEN_PID`` is our pid. Each is wrapped with its real family and
    type, made non-blocking and close-on-exec (so no child inherits it).

    :param pid: the pid to compare with ``LISTEN_PID``; ``os.getpid()`` if ``None``.
    :returns: the sockets, in fd order; empty if none were passed to us.
    :raises RuntimeSocketError: if a passed fd is not an open socket.
    """
    sockets: list[socket.socket] = []
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + _fd_count(environ, pid)):
        try:
            sock = _adopt(fd)
        except OSError as exc:
            for adopted in sockets:
                adopted.detach()
            raise RuntimeSocketError(f"LISTEN_FDS: fd {fd} is not a socket: {exc}") from exc
        sock.set_inheritable(False)
        sock.setblocking(False)
        sockets.append(sock)
    return sockets


def _adopt(fd: int) -> socket.socket:
    """Wrap *fd*; a Unix socket bound to a path becomes a :class:`UnixListener`.

    The path's device and inode are recorded as they are now, so
    :func:`remove_unix` can later tell whether the file is still this socket.
    """
    sock = socket.socket(fileno=fd)
    if sock.family != socket.AF_UNIX:
        return sock
    name = sock.getsockname()
    unix = UnixListener(fileno=sock.detach())
    if isinstance(name, str) and name and not name.startswith("\0"):
        path = Path(name)
        with contextlib.suppress(OSError):
            st = path.lstat()
            if stat.S_ISSOCK(st.st_mode):
                unix.bound_path, unix.bound_id = path, (st.st_dev, st.st_ino)
    return unix


def listen_fdnames(environ: Mapping[str, str], *, pid: int | None = None) -> list[str]:
    """The names of the passed sockets (``LISTEN_FDNAMES``), one per fd.

    Names missing from ``LISTEN_FDNAMES`` are ``"unknown"``, as in systemd.
    Empty when no sockets were passed to us.
    """
    count = _fd_count(environ, pid)
    given = environ.get("LISTEN_FDNAMES", "")
    names = given.split(":") if given else []
    return (names + ["unknown"] * count)[:count]


def remove_unix(path: Path, sock: socket.socket | None = None) -> None:
    """Remove the socket file at *path* on shutdown, if it is still ours.

    Leaves alone a path that is gone, that is not a socket, or (when *sock*
    is a :class:`UnixListener` from :func:`bind_unix` or :func:`listen_fds`)
    that is a different socket file from the one *sock* was bound to. Never
    raises for those.

    Call it while *sock* is still open: an open socket keeps its file's inode
    in use, so a socket file bound at the same path since cannot share it.
    Removing the file first also frees the path for a successor at once.
    """
    path = Path(path)
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        log.warning("not removing %s: it is no longer a socket", path)
        return
    bound_id = getattr(sock, "bound_id", None)
    if bound_id is not None and bound_id != (st.st_dev, st.st_ino):
        log.warning("not removing %s: another process has bound it since", path)
        return
    path.unlink(missing_ok=True)


def open_listeners(
    environ: Mapping[str, str],
    path: Path,
    *,
    mode: int,
    group: str | None = None,
    tcp: tuple[str, int] | None = None,
) -> tuple[list[socket.socket], list[Path]]:
    """A daemon's listening sockets: those handed over (``LISTEN_FDS``), else the Unix
    socket *path* (and *tcp*, ``(host, port)``, if given) bound here.

    :returns: the sockets, and the paths bound here (the daemon removes only those).
    """
    adopted = listen_fds(environ)
    if adopted:
        return adopted, []
    sockets = [bind_unix(path, mode=mode, group=group)]
    if tcp is not None:
        sockets.append(bind_tcp(*tcp))
    return sockets, [path]


def addresses(sockets: list[socket.socket]) -> str:
    """The sockets' addresses for a log line: ``unix:/path, host:port``."""
    names = []
    for sock in sockets:
        name = sock.getsockname()
        names.append(f"unix:{name}" if sock.family == socket.AF_UNIX else f"{name[0]}:{name[1]}")
    return ", ".join(names)


class UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTP/1.1 client connection to a server on the Unix socket *path* (nginx's, a
    web worker's): :class:`http.client.HTTPConnection` with the socket swapped."""

    def __init__(self, path: str | Path, timeout: float = 15.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.unix_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock
