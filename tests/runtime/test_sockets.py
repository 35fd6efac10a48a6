"""bind_unix, bind_tcp, listen_fds and remove_unix against the real kernel."""

from __future__ import annotations

import grp
import json
import logging
import os
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sleigh.daemons.runtime.sockets import (
    NotASocket,
    RuntimeSocketError,
    SocketInUse,
    SocketPathTooLong,
    UnixListener,
    bind_tcp,
    bind_unix,
    listen_fdnames,
    listen_fds,
    remove_unix,
)
from tests.plugins.daemons import short_tmpdir


@pytest.fixture
def short() -> Iterator[Path]:
    """A short private directory: ``tmp_path`` can be too long for ``sun_path``."""
    path = short_tmpdir()
    yield path
    shutil.rmtree(path)


def accepts(path: Path) -> bool:
    """Whether a client can connect to the Unix socket at *path*."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        try:
            client.connect(str(path))
        except ConnectionRefusedError:
            return False
        return True


def test_bind_unix_listens_non_blocking_with_mode_0660(short: Path) -> None:
    path = short / "a.sock"
    with bind_unix(path) as sock:
        assert stat.S_ISSOCK(path.lstat().st_mode)
        assert stat.S_IMODE(path.lstat().st_mode) == 0o660
        assert sock.getblocking() is False
        assert not sock.get_inheritable()
        with pytest.raises(BlockingIOError):
            sock.accept()
        assert accepts(path)


@pytest.mark.parametrize("mode", [0o600, 0o666, 0o640])
def test_bind_unix_applies_the_mode_and_restores_the_umask(short: Path, mode: int) -> None:
    before = os.umask(0o022)
    try:
        with bind_unix(short / "m.sock", mode=mode):
            assert stat.S_IMODE((short / "m.sock").lstat().st_mode) == mode
        assert os.umask(0o022) == 0o022
    finally:
        os.umask(before)


def test_bind_unix_creates_the_parent_directory_0755(short: Path) -> None:
    before = os.umask(0o077)
    try:
        with bind_unix(short / "run" / "s.sock"):
            assert stat.S_IMODE((short / "run").stat().st_mode) == 0o755
    finally:
        os.umask(before)


def test_bind_unix_gives_the_socket_to_a_group(short: Path) -> None:
    group = grp.getgrgid(os.getgid()).gr_name
    with bind_unix(short / "g.sock", group=group):
        assert (short / "g.sock").lstat().st_gid == os.getgid()


def test_bind_unix_rejects_an_unknown_group_and_leaves_nothing(short: Path) -> None:
    with pytest.raises(RuntimeSocketError, match="no-such-group-sleigh"):
        bind_unix(short / "g.sock", group="no-such-group-sleigh")
    assert not (short / "g.sock").exists()


def test_a_stale_socket_is_removed_and_replaced(
    short: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = short / "stale.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()
    assert not accepts(path)
    with caplog.at_level(logging.WARNING, "sleigh.runtime.sockets"), bind_unix(path):
        assert accepts(path)
    assert any("stale socket" in r.getMessage() for r in caplog.records)


def test_a_live_socket_is_refused_and_keeps_working(short: Path) -> None:
    path = short / "live.sock"
    with bind_unix(path) as first:
        with pytest.raises(SocketInUse, match=str(path)):
            bind_unix(path)
        assert accepts(path)
        conn, _ = first.accept()
        conn.close()


@pytest.mark.parametrize("make", ["file", "directory", "symlink"])
def test_a_path_that_is_not_a_socket_is_refused_and_kept(short: Path, make: str) -> None:
    path = short / "thing"
    if make == "file":
        path.write_text("precious")
    elif make == "directory":
        path.mkdir()
    else:
        path.symlink_to(short / "elsewhere")
    with pytest.raises(NotASocket, match="not a socket"):
        bind_unix(path)
    assert os.path.lexists(path)
    if make == "file":
        assert path.read_text() == "precious"


def test_a_too_long_path_is_refused_by_name(short: Path) -> None:
    path = short / ("x" * 120)
    with pytest.raises(SocketPathTooLong, match=r"x{120}.*limit is 107"):
        bind_unix(path)
    assert not path.exists()


def test_remove_unix_removes_our_socket(short: Path) -> None:
    path = short / "r.sock"
    sock = bind_unix(path)
    sock.close()
    remove_unix(path, sock)
    assert not os.path.lexists(path)
    remove_unix(path, sock)  # gone already: nothing to do


def test_remove_unix_leaves_a_socket_bound_since_by_someone_else(short: Path) -> None:
    path = short / "r.sock"
    with bind_unix(path) as ours:
        assert isinstance(ours, UnixListener) and ours.bound_id is not None
        path.unlink()
        with bind_unix(path):
            remove_unix(path, ours)
            assert accepts(path)


def test_remove_unix_never_removes_a_regular_file(short: Path) -> None:
    path = short / "r.sock"
    path.write_text("not yours")
    remove_unix(path)
    assert path.read_text() == "not yours"


def test_bind_tcp_on_ipv4_port_zero() -> None:
    with bind_tcp("127.0.0.1", 0) as sock:
        host, port = sock.getsockname()
        assert (sock.family, host) == (socket.AF_INET, "127.0.0.1") and port > 0
        assert sock.getblocking() is False
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        socket.create_connection((host, port), timeout=5).close()


def test_bind_tcp_on_ipv6() -> None:
    try:
        sock = bind_tcp("::1", 0)
    except RuntimeSocketError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    with sock:
        assert sock.family == socket.AF_INET6
        socket.create_connection(sock.getsockname()[:2], timeout=5).close()


def test_bind_tcp_refuses_a_port_in_use() -> None:
    with bind_tcp("127.0.0.1", 0) as first:
        port = first.getsockname()[1]
        with pytest.raises(SocketInUse, match=f"127.0.0.1:{port}"):
            bind_tcp("127.0.0.1", port)


def test_bind_tcp_names_an_address_not_on_this_host() -> None:
    with pytest.raises(RuntimeSocketError, match=r"192\.0\.2\.1:0: .*address"):
        bind_tcp("192.0.2.1", 0)


def test_listen_fds_is_empty_unless_the_fds_are_for_us() -> None:
    assert listen_fds({}) == []
    assert listen_fds({"LISTEN_FDS": "1"}) == []
    assert listen_fds({"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "1"}) == []
    assert listen_fds({"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "x"}) == []
    assert listen_fds({"LISTEN_PID": "1", "LISTEN_FDS": "1"}, pid=2) == []


def test_listen_fdnames() -> None:
    me = str(os.getpid())
    assert listen_fdnames({}) == []
    assert listen_fdnames({"LISTEN_PID": me, "LISTEN_FDS": "2"}) == ["unknown", "unknown"]
    environ = {"LISTEN_PID": me, "LISTEN_FDS": "2", "LISTEN_FDNAMES": "web:admin"}
    assert listen_fdnames(environ) == ["web", "admin"]
    assert listen_fdnames({**environ, "LISTEN_PID": "1"}) == []


_ADOPT = """
import json, os, socket
from sleigh.daemons.runtime.sockets import listen_fds, listen_fdnames, RuntimeSocketError
try:
    socks = listen_fds(os.environ)
except RuntimeSocketError as exc:
    print(json.dumps({"error": str(exc)}))
    raise SystemExit(0)
out = []
for s in socks:
    out.append({
        "fileno": s.fileno(), "family": int(s.family), "type": int(s.type),
        "blocking": s.getblocking(), "inheritable": s.get_inheritable(),
        "name": s.getsockname(), "bound": getattr(s, "bound_id", None) is not None,
    })
print(json.dumps({"sockets": out, "names": listen_fdnames(os.environ)}))
"""


def _run_with_fd3(stdin: int, extra_env: dict[str, str]) -> dict[str, Any]:
    """Run ``_ADOPT`` in a child that gets *stdin* as fd 3 and ``LISTEN_PID`` = its pid."""
    env = {**os.environ, "LISTEN_FDS": "1", **extra_env}
    result = subprocess.run(
        [
            "/bin/sh",
            "-c",
            'LISTEN_PID=$$; export LISTEN_PID; exec "$@" 3<&0 0</dev/null',
            "sh",
            sys.executable,
            "-c",
            _ADOPT,
        ],
        stdin=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


@pytest.mark.parametrize("family", ["unix", "tcp"])
def test_listen_fds_adopts_a_real_fd_in_a_child(short: Path, family: str) -> None:
    sock = bind_unix(short / "fd.sock") if family == "unix" else bind_tcp("127.0.0.1", 0)
    with sock:
        name = sock.getsockname()
        report = _run_with_fd3(sock.fileno(), {"LISTEN_FDNAMES": "echo"})
    assert report["names"] == ["echo"]
    [adopted] = report["sockets"]
    assert adopted["fileno"] == 3
    assert adopted["family"] == (socket.AF_UNIX if family == "unix" else socket.AF_INET)
    assert adopted["type"] == socket.SOCK_STREAM
    assert adopted["blocking"] is False and adopted["inheritable"] is False
    if family == "unix":
        assert adopted["name"] == str(short / "fd.sock") and adopted["bound"] is True
    else:
        assert adopted["name"] == list(name)


def test_listen_fds_refuses_an_fd_that_is_not_a_socket(short: Path) -> None:
    regular = short / "plain.txt"
    regular.write_text("hi")
    with regular.open("rb") as f:
        report = _run_with_fd3(f.fileno(), {})
    assert "fd 3 is not a socket" in str(report["error"])
