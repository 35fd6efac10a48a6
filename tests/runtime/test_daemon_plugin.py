"""The daemon plugin and the demo daemon: handover, handshake, reload, drain, escalation.

And socket ownership: a daemon removes only the Unix socket files it bound
itself; a handed-over socket belongs to the fixture, which removes it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plugins.daemons import Daemon, DaemonFactory, DaemonStartError, short_tmpdir

DEMO = [sys.executable, "-m", "tests.runtime.demo_daemon"]

#: A daemon that unlinks the socket it was handed, sends READY=1 and then sleeps;
#: SIGTERM kills it (exit -15): everything the teardown must complain about.
CARELESS = (
    "import os, socket, time\n"
    "os.unlink(socket.socket(fileno=3).getsockname())\n"
    "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
    "s.sendto(b'READY=1', os.environ['NOTIFY_SOCKET'])\n"
    "time.sleep(600)\n"
)

#: Binds a Unix socket at argv[1] itself, sends READY=1, and exits 0 on SIGTERM
#: without removing the socket file it bound.
LITTERER = (
    "import os, signal, socket, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
    "listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
    "listener.bind(sys.argv[1])\n"
    "listener.listen()\n"
    "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
    "s.sendto(b'READY=1', os.environ['NOTIFY_SOCKET'])\n"
    "time.sleep(600)\n"
)

#: Reports what it was handed (pid, LISTEN_PID, fd 3) in STATUS, then waits for SIGTERM.
INSPECTOR = (
    "import json, os, signal, socket, sys\n"
    "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])\n"
    "fd3 = socket.socket(fileno=3)\n"
    "info = {'pid': os.getpid(), 'listen_pid': os.environ['LISTEN_PID'],\n"
    "        'listen_fds': os.environ['LISTEN_FDS'], 'name': fd3.getsockname()}\n"
    "fd3.detach()\n"
    "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
    "s.sendto(('READY=1\\nSTATUS=' + json.dumps(info)).encode(), os.environ['NOTIFY_SOCKET'])\n"
    "signal.sigwait([signal.SIGTERM])\n"
)


@pytest.fixture
def spare_factory() -> Iterator[DaemonFactory]:
    """A :class:`DaemonFactory` whose ``finish`` the test calls and judges itself.

    Teardown only kills what is left (a failed test may not reach ``finish``).
    """
    tmpdir = short_tmpdir()
    factory = DaemonFactory(Path.cwd(), tmpdir)
    try:
        yield factory
    finally:
        for daemon in factory.daemons:
            daemon.close()
        shutil.rmtree(tmpdir)


def is_socket(address: Path | tuple[str, int]) -> bool:
    """Whether *address* is a path naming a socket file."""
    return isinstance(address, Path) and address.is_socket()


def connect(address: Path | tuple[str, int]) -> socket.socket:
    """A blocking client connection with a generous timeout."""
    if isinstance(address, Path):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(15)
        sock.connect(str(address))
    else:
        sock = socket.create_connection(address, timeout=15)
    return sock


def roundtrip(sock: socket.socket, line: bytes) -> bytes:
    """Send *line* and read back one line."""
    sock.sendall(line)
    received = b""
    while not received.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        received += chunk
    return received


def test_start_returns_after_ready_with_the_socket_handed_over(
    daemon_factory: DaemonFactory,
) -> None:
    daemon = daemon_factory.start([sys.executable, "-c", INSPECTOR])
    status = daemon.notifications[0].split("\n")
    assert status[0] == "READY=1"
    info = json.loads(status[1].removeprefix("STATUS="))
    assert info["listen_pid"] == str(daemon.pid) == str(info["pid"])
    assert info["listen_fds"] == "1"
    assert info["name"] == str(daemon.address)
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait() == 0


def test_demo_daemon_echoes_over_a_handed_over_unix_socket(
    daemon_factory: DaemonFactory,
) -> None:
    daemon = daemon_factory.start(DEMO)
    assert isinstance(daemon.address, Path)
    assert stat.S_ISSOCK(daemon.address.lstat().st_mode)
    with connect(daemon.address) as client:
        assert roundtrip(client, b"hello sleigh\n") == b"hello sleigh\n"
        assert roundtrip(client, b"again\n") == b"again\n"


def test_demo_daemon_echoes_over_a_handed_over_tcp_socket(
    daemon_factory: DaemonFactory,
) -> None:
    daemon = daemon_factory.start(DEMO, tcp=True)
    assert isinstance(daemon.address, tuple)
    assert daemon.address[0] == "127.0.0.1" and daemon.address[1] > 0
    with connect(daemon.address) as client:
        assert roundtrip(client, b"over tcp\n") == b"over tcp\n"


def test_unix_socket_at_a_chosen_path(daemon_factory: DaemonFactory) -> None:
    path = daemon_factory.tmpdir / "chosen" / "echo.sock"
    daemon = daemon_factory.start(DEMO, unix_socket=path)
    assert daemon.address == path
    with connect(path) as client:
        assert roundtrip(client, b"x\n") == b"x\n"


def test_sighup_reloads_and_the_daemon_keeps_serving(daemon_factory: DaemonFactory) -> None:
    daemon = daemon_factory.start(DEMO)
    daemon.send_signal(signal.SIGHUP)
    reloading = daemon.expect("RELOADING=1")
    assert re.search(r"^MONOTONIC_USEC=\d+$", reloading, re.MULTILINE)
    daemon.expect("READY=1")
    assert "reloaded" in daemon.stderr_text()
    with connect(daemon.address) as client:
        assert roundtrip(client, b"still here\n") == b"still here\n"


def test_sigterm_stops_cleanly_and_keeps_the_handed_over_socket(
    daemon_factory: DaemonFactory,
) -> None:
    daemon = daemon_factory.start(DEMO)
    assert daemon.stop() == 0
    assert any("STOPPING=1" in n.split("\n") for n in daemon.notifications)
    assert is_socket(daemon.address)
    assert daemon.handed_over_intact()
    assert "Traceback" not in daemon.stderr_text()


def test_demo_daemon_removes_the_socket_it_bound_itself(daemon_factory: DaemonFactory) -> None:
    path = daemon_factory.tmpdir / "own.sock"
    daemon = daemon_factory.start([*DEMO, "--socket", str(path)], binds_itself=path)
    assert daemon.listener is None
    assert is_socket(path)
    with connect(path) as client:
        assert roundtrip(client, b"mine\n") == b"mine\n"
    assert daemon.stop() == 0
    assert not os.path.lexists(path)
    assert "Traceback" not in daemon.stderr_text()


def test_sigterm_drains_an_open_connection_before_exiting(daemon_factory: DaemonFactory) -> None:
    daemon = daemon_factory.start(DEMO)
    with connect(daemon.address) as client:
        assert roundtrip(client, b"before\n") == b"before\n"
        daemon.send_signal(signal.SIGTERM)
        daemon.expect("STOPPING=1")
        assert daemon.proc.poll() is None
        assert roundtrip(client, b"during the drain\n") == b"during the drain\n"
    assert daemon.wait() == 0
    assert is_socket(daemon.address)


def test_second_sigterm_escalates_while_a_client_holds_on(
    daemon_factory: DaemonFactory,
) -> None:
    daemon = daemon_factory.start(DEMO)
    with connect(daemon.address) as client:
        assert roundtrip(client, b"hold\n") == b"hold\n"
        daemon.send_signal(signal.SIGTERM)
        daemon.expect("STOPPING=1")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait() == 1
        assert client.recv(100) == b""
    assert "second stop signal" in daemon.stderr_text()
    assert is_socket(daemon.address)


def test_drain_deadline_cuts_off_a_client_and_exits_zero(daemon_factory: DaemonFactory) -> None:
    daemon = daemon_factory.start([*DEMO, "--drain", "0.2"])
    with connect(daemon.address) as client:
        assert roundtrip(client, b"hold\n") == b"hold\n"
        assert daemon.stop() == 0
        assert client.recv(100) == b""
    assert "drain deadline passed" in daemon.stderr_text()


def test_start_fails_loudly_when_the_daemon_never_sends_ready(
    daemon_factory: DaemonFactory,
) -> None:
    sleeper = (
        "import os, sys, time; print('pid', os.getpid(), file=sys.stderr, flush=True); "
        "time.sleep(600)"
    )
    with pytest.raises(DaemonStartError, match=r"sent no READY=1 within 1s") as failure:
        daemon_factory.start([sys.executable, "-c", sleeper], ready_timeout=1.0)
    match = re.search(r"pid (\d+)", str(failure.value).split("--- stderr ---")[1])
    assert match, str(failure.value)
    with pytest.raises(ProcessLookupError):
        os.kill(int(match.group(1)), 0)
    assert daemon_factory.daemons == []


def test_start_fails_with_stderr_when_the_daemon_exits(daemon_factory: DaemonFactory) -> None:
    crasher = "import sys; sys.stderr.write('no config here\\n'); sys.exit(3)"
    with pytest.raises(DaemonStartError, match="exited with code 3") as failure:
        daemon_factory.start([sys.executable, "-c", crasher])
    assert "no config here" in str(failure.value)
    assert daemon_factory.daemons == []


def test_teardown_reports_bad_exit_removed_or_leftover_socket_and_traceback(
    spare_factory: DaemonFactory,
) -> None:
    problems = _misbehave(spare_factory)
    assert "exited with -15 after SIGTERM" in problems
    assert "exited by itself with -9" in problems
    assert "wrote a traceback" in problems
    assert all(d.proc.poll() is not None for d in spare_factory.daemons)


def _misbehave(factory: DaemonFactory) -> str:
    """Start three misbehaving daemons; the problems ``finish`` reports."""
    careless = factory.start([sys.executable, "-c", CARELESS])
    assert not careless.handed_over_intact()
    own = factory.tmpdir / "litter.sock"
    litterer = factory.start([sys.executable, "-c", LITTERER, str(own)], binds_itself=own)
    crashed = factory.start(DEMO)
    crashed.proc.kill()
    crashed.proc.wait()
    crashed.stderr_path.write_text("Traceback (most recent call last):\n")
    reports = factory.finish()
    problems = "\n".join(reports)
    assert f"pid {careless.pid}" in problems
    assert f"removed the socket it was handed {careless.address}" in problems
    assert f"pid {litterer.pid}" in problems
    assert f"left its socket {own} behind" in problems
    assert not any(f"pid {crashed.pid}" in r and "the socket it was" in r for r in reports)
    return problems


def test_teardown_passes_and_removes_the_sockets_it_handed_over(
    spare_factory: DaemonFactory,
) -> None:
    default = spare_factory.start(DEMO)
    chosen = spare_factory.start(DEMO, unix_socket=spare_factory.tmpdir / "chosen" / "e.sock")
    stopped = spare_factory.start(DEMO)
    assert stopped.stop() == 0
    addresses = [d.address for d in (default, chosen, stopped)]
    assert all(is_socket(address) for address in addresses)
    assert spare_factory.finish() == []
    assert not any(os.path.lexists(str(address)) for address in addresses)


def test_teardown_leaves_a_socket_file_someone_else_bound_since(
    spare_factory: DaemonFactory,
) -> None:
    daemon = spare_factory.start(DEMO)
    assert isinstance(daemon.address, Path) and daemon.stop() == 0
    daemon.address.unlink()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as successor:
        successor.bind(str(daemon.address))
        problems = "\n".join(spare_factory.finish())
        assert f"removed the socket it was handed {daemon.address}" in problems
        assert is_socket(daemon.address)


def test_daemon_is_killed_by_close_if_still_running(daemon_factory: DaemonFactory) -> None:
    daemon: Daemon = daemon_factory.start([sys.executable, "-c", INSPECTOR])
    daemon_factory.daemons.remove(daemon)
    try:
        assert daemon.handed_over_intact()
    finally:
        daemon.close()
    assert daemon.proc.returncode == -signal.SIGKILL
    assert not os.path.lexists(str(daemon.address))
