"""Pytest plugin: start real daemons the way systemd does, and check how they stop.

``daemon_factory.start(argv)`` gives each daemon what a ``Type=notify``
service with socket activation gets:

* **bind first, hand over**: the fixture binds the listening socket itself
  (a Unix socket at a short path, or TCP on 127.0.0.1 port 0) and passes it
  as fd 3 with ``LISTEN_FDS=1`` and ``LISTEN_PID`` set to the daemon's pid,
  so the address is known and taken before the daemon runs: no port race;
* **readiness by handshake**: ``NOTIFY_SOCKET`` names a datagram socket the
  fixture listens on; ``start`` returns once ``READY=1`` arrives, and fails
  with the daemon's stderr if the daemon exits or the deadline passes first.

Socket ownership (systemd's rule, and the project's): **a daemon removes
only the Unix socket files it bound itself. A socket handed over through
``LISTEN_FDS`` belongs to whoever bound it** (systemd's ``.socket`` unit,
``sleigh up``'s supervisor, or this fixture), which keeps it across restarts
of the daemon and removes it itself. Under socket activation a daemon that
unlinks the adopted socket breaks the next activation, and ``sleigh up``
hands one socket to several web workers, any of which may be restarted. So
the fixture, like a ``.socket`` unit, keeps its end of the listening socket
open while the daemon runs, and removes the socket file once it has exited.
A daemon started with ``binds_itself=PATH`` gets no socket and must remove
the file it bound at ``PATH`` when it stops.

At teardown every daemon still running gets SIGTERM and must exit 0 within
the deadline and write no ``Traceback`` to stderr; a handed-over Unix socket
file must still be there, the very socket the fixture bound; a socket the
daemon bound itself must be gone. Anything still alive is then killed, and
the fixture removes the socket files it bound.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sleigh.daemons.runtime.sockets import bind_tcp, bind_unix, remove_unix

__all__ = ["Daemon", "DaemonFactory", "DaemonStartError", "daemon_factory", "short_tmpdir"]

#: Runs the daemon with the handed-over socket (the shell's stdin) moved to fd 3,
#: and ``LISTEN_PID`` set to the pid the daemon will have (``exec`` keeps it).
_HANDOVER = 'LISTEN_PID=$$; export LISTEN_PID; exec "$@" 3<&0 0</dev/null'
_INHERITED_NOISE = (
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
)
_STDERR_TAIL = 4000


def _release(listener: socket.socket | None, address: Path | tuple[str, int]) -> None:
    """Remove the socket file the fixture bound (if it still is that socket), then close it."""
    if listener is None:
        return
    if isinstance(address, Path):
        remove_unix(address, listener)
    listener.close()


class DaemonStartError(AssertionError):
    """A daemon did not become ready: it exited, or never sent ``READY=1`` in time."""


@dataclass
class Daemon:
    """One daemon started by :class:`DaemonFactory`.

    ``listener`` is the fixture's end of the socket it handed over (kept open,
    as a ``.socket`` unit keeps it), or ``None`` if the daemon binds itself.
    """

    proc: subprocess.Popen[bytes]
    address: Path | tuple[str, int]
    listener: socket.socket | None
    notify_sock: socket.socket
    stderr_path: Path
    argv: list[str]
    notifications: list[str] = field(default_factory=list)
    reaped: bool = False
    _cursor: int = 0

    @property
    def pid(self) -> int:
        """The daemon's process id."""
        return self.proc.pid

    def stderr_text(self) -> str:
        """Everything the daemon has written to stderr so far."""
        return self.stderr_path.read_text(errors="replace")

    def send_signal(self, sig: int) -> None:
        """Send *sig* to the daemon."""
        self.proc.send_signal(sig)

    def _collect(self, timeout: float) -> None:
        """Wait up to *timeout* for notifications (or the daemon's exit); keep them all."""
        ready, _, _ = select.select([self.notify_sock], [], [], max(timeout, 0.0))
        while ready:
            try:
                data = self.notify_sock.recv(65536)
            except BlockingIOError:
                return
            self.notifications.append(data.decode(errors="replace"))

    def _explain(self, what: str) -> str:
        tail = self.stderr_text()[-_STDERR_TAIL:]
        return (
            f"daemon pid {self.pid} ({' '.join(self.argv)}) {what}; "
            f"notifications: {self.notifications}\n--- stderr ---\n{tail}"
        )

    def expect(self, line: str, timeout: float = 15.0) -> str:
        """Wait for the next notification holding *line* (``"READY=1"``) and return it.

        "Next" means after the one the previous ``expect`` returned.

        :raises DaemonStartError: if the daemon exits or *timeout* passes first.
        """
        deadline = time.monotonic() + timeout
        while True:
            for index in range(self._cursor, len(self.notifications)):
                if line in self.notifications[index].split("\n"):
                    self._cursor = index + 1
                    return self.notifications[index]
            self._cursor = len(self.notifications)
            remaining = deadline - time.monotonic()
            if self.proc.poll() is not None:
                self._collect(0)
                if self._cursor < len(self.notifications):
                    continue
                raise DaemonStartError(
                    self._explain(f"exited with code {self.proc.returncode} before {line}")
                )
            if remaining <= 0:
                raise DaemonStartError(self._explain(f"sent no {line} within {timeout:g}s"))
            self._collect(min(remaining, 0.05))

    def wait(self, timeout: float = 15.0) -> int:
        """Wait for the daemon to exit; the caller takes over checking its exit code.

        :raises subprocess.TimeoutExpired: if it is still running after *timeout*.
        """
        code = self.proc.wait(timeout)
        self.reaped = True
        self._collect(0)
        return code

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, then wait for the exit code (see :meth:`wait`)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def handed_over_intact(self) -> bool:
        """Whether the Unix socket file the fixture handed over is still that socket.

        True for a TCP socket, or when nothing was handed over.
        """
        if self.listener is None or not isinstance(self.address, Path):
            return True
        try:
            st = self.address.lstat()
        except FileNotFoundError:
            return False
        bound_id = getattr(self.listener, "bound_id", None)
        return stat.S_ISSOCK(st.st_mode) and bound_id == (st.st_dev, st.st_ino)

    def close(self) -> None:
        """Kill the process if it is still alive and release what the fixture holds.

        The fixture owns the socket it handed over: its file is removed here,
        once the daemon is gone, if it is still that socket (see ``remove_unix``).
        """
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        _release(self.listener, self.address)
        self.notify_sock.close()


class DaemonFactory:
    """Starts daemons and, in :meth:`finish`, checks and stops all of them.

    :param workdir: the daemons' working directory (the repository root).
    :param tmpdir: a short directory for sockets and stderr files, owned here.
    """

    def __init__(self, workdir: Path, tmpdir: Path) -> None:
        self.workdir = workdir
        self.tmpdir = tmpdir
        self.daemons: list[Daemon] = []
        self._count = 0

    def _bind(
        self, unix_socket: Path | None, tcp: bool
    ) -> tuple[socket.socket, Path | tuple[str, int]]:
        if tcp:
            sock = bind_tcp("127.0.0.1", 0)
            host, port = sock.getsockname()[:2]
            return sock, (host, port)
        path = unix_socket if unix_socket is not None else self.tmpdir / f"d{self._count}.sock"
        return bind_unix(path, mode=0o600), path

    def _notify_socket(self) -> tuple[socket.socket, Path]:
        path = self.tmpdir / f"n{self._count}.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(path))
        sock.setblocking(False)
        return sock, path

    def _environment(
        self, env: dict[str, str] | None, notify_path: Path, handover: bool
    ) -> dict[str, str]:
        environ = {k: v for k, v in os.environ.items() if k not in _INHERITED_NOISE}
        environ.update(env or {})
        if handover:
            environ["LISTEN_FDS"] = "1"
        environ["NOTIFY_SOCKET"] = str(notify_path)
        return environ

    def _spawn(
        self,
        argv: list[str],
        listener: socket.socket | None,
        environ: dict[str, str],
        stderr_path: Path,
    ) -> subprocess.Popen[bytes]:
        """Run *argv*, with *listener* as fd 3 unless it is ``None``."""
        with stderr_path.open("wb") as stderr:
            if listener is None:
                return subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    cwd=self.workdir,
                    env=environ,
                )
            return subprocess.Popen(
                ["/bin/sh", "-c", _HANDOVER, "sh", *argv],
                stdin=listener.fileno(),
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                cwd=self.workdir,
                env=environ,
            )

    def start(
        self,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        unix_socket: Path | None = None,
        tcp: bool = False,
        binds_itself: Path | None = None,
        ready_timeout: float = 15.0,
    ) -> Daemon:
        """Start ``argv`` with a listening socket handed over, and wait for ``READY=1``.

        :param env: variables added to (or replacing) the test's environment.
        :param unix_socket: where to bind the Unix socket; a short temporary path if
            ``None``. Ignored when *tcp* is true.
        :param tcp: hand over a TCP socket on 127.0.0.1 (a free port) instead.
        :param binds_itself: hand over nothing (no ``LISTEN_FDS``): the daemon binds
            a Unix socket at this path itself (tell it so in *argv*), and must
            remove it when it stops. *unix_socket* and *tcp* are then ignored.
        :raises DaemonStartError: if the daemon exits or is not ready within
            *ready_timeout*; it is killed first, and the message holds its stderr.
        """
        self._count += 1
        listener: socket.socket | None = None
        if binds_itself is None:
            listener, address = self._bind(unix_socket, tcp)
        else:
            address = binds_itself
        notify_sock, notify_path = self._notify_socket()
        stderr_path = self.tmpdir / f"d{self._count}.stderr"
        environ = self._environment(env, notify_path, handover=listener is not None)
        try:
            proc = self._spawn(argv, listener, environ, stderr_path)
        except BaseException:
            notify_sock.close()
            _release(listener, address)
            raise
        daemon = Daemon(proc, address, listener, notify_sock, stderr_path, list(argv))
        try:
            daemon.expect("READY=1", timeout=ready_timeout)
        except BaseException:
            daemon.close()
            raise
        self.daemons.append(daemon)
        return daemon

    def _check(self, daemon: Daemon, timeout: float) -> list[str]:
        """Stop *daemon* unless the test reaped it; list what it did wrong."""
        problems = []
        if not daemon.reaped:
            if daemon.proc.poll() is not None:
                problems.append(daemon._explain(f"exited by itself with {daemon.proc.returncode}"))
            else:
                try:
                    code = daemon.stop(timeout)
                except subprocess.TimeoutExpired:
                    problems.append(daemon._explain(f"did not exit within {timeout:g}s of SIGTERM"))
                else:
                    if code != 0:
                        problems.append(daemon._explain(f"exited with {code} after SIGTERM"))
        if not daemon.handed_over_intact():
            problems.append(daemon._explain(f"removed the socket it was handed {daemon.address}"))
        if daemon.listener is None and os.path.lexists(str(daemon.address)):
            problems.append(daemon._explain(f"left its socket {daemon.address} behind"))
        if "Traceback" in daemon.stderr_text():
            problems.append(daemon._explain("wrote a traceback to stderr"))
        return problems

    def finish(self, timeout: float = 15.0) -> list[str]:
        """Stop and check every daemon, kill what is left; return the problems found."""
        problems = []
        for daemon in self.daemons:
            try:
                problems += self._check(daemon, timeout)
            finally:
                daemon.close()
        return problems


def exchange(path: Path, data: bytes, timeout: float = 10.0) -> bytes:
    """*data* written as is to the Unix socket at *path*, our side then shut for
    writing; all the daemon answers until it closes (or resets) the connection."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks)


def short_tmpdir() -> Path:
    """A new private directory with a short path, so socket paths fit in ``sun_path``."""
    base = "/tmp" if os.path.isdir("/tmp") else None
    return Path(tempfile.mkdtemp(prefix="sld-", dir=base))


@pytest.fixture
def daemon_factory(request: pytest.FixtureRequest) -> Iterator[DaemonFactory]:
    """A :class:`DaemonFactory`; teardown stops every daemon and fails on misbehaviour."""
    tmpdir = short_tmpdir()
    factory = DaemonFactory(request.config.rootpath, tmpdir)
    try:
        yield factory
    finally:
        problems = factory.finish()
        with contextlib.suppress(OSError):
            shutil.rmtree(tmpdir)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)
