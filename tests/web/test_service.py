"""``sleigh-web`` as a real daemon: socket handed over, READY=1, SIGHUP, SIGTERM."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sleigh.daemons.runtime.sockets import UnixHTTPConnection
from tests.plugins.daemons import DaemonFactory, exchange, short_tmpdir
from tests.plugins.procfs import assert_steady


def get(path: Path, url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    conn = UnixHTTPConnection(path)
    try:
        conn.request("GET", url, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def sleigh(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sleigh.daemons.control", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("SLEIGH_")},
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("web-home")
    result = sleigh("demo", "load", "--products", "200", home=home)
    assert result.returncode == 0, result.stderr
    return home


def web_argv(home: Path) -> list[str]:
    return [sys.executable, "-m", "sleigh.webapp", "--home", str(home)]


def test_serves_on_the_socket_it_is_handed(daemon_factory: DaemonFactory, home: Path) -> None:
    daemon = daemon_factory.start(web_argv(home))
    assert isinstance(daemon.address, Path)
    status, body = get(daemon.address, "/healthz")
    assert status == 200
    health = json.loads(body)
    # No cache daemon runs for this worker: the shop serves from the database.
    assert health["status"] == "degraded" and health["database"] == "ok"
    assert health["cache"].startswith("down") and health["pid"] == daemon.pid
    status, page = get(daemon.address, "/")
    assert status == 200 and "Popular right now" in page


def test_access_log_has_a_line_per_request(daemon_factory: DaemonFactory, home: Path) -> None:
    daemon = daemon_factory.start(web_argv(home))
    assert isinstance(daemon.address, Path)
    assert get(daemon.address, "/no/such/page?x=1")[0] == 404
    assert get(daemon.address, "/healthz")[0] == 200
    assert daemon.stop() == 0
    lines = [line for line in daemon.stderr_text().splitlines() if "sleigh.web.access" in line]
    assert len(lines) == 2, lines
    assert '"GET /no/such/page?x=1 HTTP/1.1" 404 ' in lines[0]
    assert '"GET /healthz HTTP/1.1" 200 ' in lines[1]
    # client, request, status, bytes, seconds, then the request id the response carried
    assert all(len(line.split('"')[2].split()) == 4 for line in lines), lines


def test_behind_a_proxy_the_access_log_names_the_shopper(
    daemon_factory: DaemonFactory, home: Path
) -> None:
    env = {"SLEIGH_THROTTLE_CLIENT_IP_HEADER": "X-Real-IP", "SLEIGH_THROTTLE_ENABLED": "false"}
    daemon = daemon_factory.start(web_argv(home), env=env)
    assert isinstance(daemon.address, Path)
    assert get(daemon.address, "/healthz", {"X-Real-IP": "198.51.100.4"})[0] == 200
    assert daemon.stop() == 0
    [line] = [line for line in daemon.stderr_text().splitlines() if "sleigh.web.access" in line]
    assert ' 198.51.100.4 "GET /healthz HTTP/1.1" 200 ' in line


def _rows(home: Path, table: str) -> int:
    with sqlite3.connect(home / "sleigh.db") as db:
        count: int = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return count


def test_a_stream_of_bad_requests_leaks_nothing_and_stores_nothing(
    daemon_factory: DaemonFactory, home: Path
) -> None:
    """Forged cookies, forms without their token, pages that do not exist, bad
    queries, HTTP that is not HTTP, heads and bodies over the limits: each gets a
    4xx, the worker keeps no descriptor or memory, and no session or cart is stored."""
    # (no limits: every bad request reaches the code that refuses it)
    daemon = daemon_factory.start(web_argv(home), env={"SLEIGH_THROTTLE_ENABLED": "false"})
    address = daemon.address
    assert isinstance(address, Path)
    rng = random.Random(9)

    def forged_cookie() -> bytes:
        cookie = rng.randbytes(rng.randrange(1, 80)).hex()
        return f"GET / HTTP/1.1\r\nHost: x\r\nCookie: sid={cookie}\r\n\r\n".encode()

    def form_without_token() -> bytes:
        body = f"product={rng.randrange(1, 10**9)}&quantity={rng.randrange(-5, 10**6)}"
        return (
            "POST /cart/add HTTP/1.1\r\nHost: x\r\nContent-Type:"
            f" application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n{body}"
        ).encode()

    shapes: list[Callable[[], bytes]] = [
        forged_cookie,
        form_without_token,
        lambda: b"GET /p/999999999999 HTTP/1.1\r\nHost: x\r\n\r\n",
        lambda: b"GET /c/toys?sort=cheapest&price=abc&page=-1 HTTP/1.1\r\nHost: x\r\n\r\n",
        lambda: b"GET /search?q=" + b"%ff" * 3000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        lambda: rng.randbytes(rng.randrange(1, 2000)),  # not HTTP at all
        lambda: b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n",
        lambda: b"POST /cart/add HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\nab",
        lambda: b"GET /p/1 HTTP/1.1\r\nHost: x\r\nContent-Le",  # cut short
    ]

    def round_of_garbage(n: int) -> None:
        for i in range(n):
            answer = exchange(address, shapes[i % len(shapes)]())
            assert not answer.startswith(b"HTTP/1.1 5"), answer[:200]

    stored = {table: _rows(home, table) for table in ("sessions", "carts", "cart_lines")}
    # (fd_slack: the database pool opens connections as it needs them)
    assert_steady([daemon.pid], round_of_garbage, 180, 900, fd_slack=4)
    assert {table: _rows(home, table) for table in stored} == stored
    assert get(address, "/healthz")[0] == 200
    log = daemon.stderr_text()
    assert "Traceback" not in log and "malformed request from" in log
    assert "malformed request from -: LineTooLong: Got more than 8190 bytes" in log


def test_sighup_reloads_and_keeps_serving(daemon_factory: DaemonFactory, home: Path) -> None:
    daemon = daemon_factory.start(web_argv(home))
    assert isinstance(daemon.address, Path)
    daemon.send_signal(signal.SIGHUP)
    daemon.expect("RELOADING=1")
    daemon.expect("READY=1")
    assert get(daemon.address, "/healthz")[0] == 200
    assert "reloaded" in daemon.stderr_text()


def test_sigterm_stops_cleanly_and_says_stopping(daemon_factory: DaemonFactory, home: Path) -> None:
    daemon = daemon_factory.start(web_argv(home))
    assert isinstance(daemon.address, Path)
    assert get(daemon.address, "/healthz")[0] == 200
    assert daemon.stop() == 0
    assert any("STOPPING=1" in n for n in daemon.notifications)
    assert "stopped" in daemon.stderr_text()


def test_binds_and_removes_its_own_socket(home: Path) -> None:
    tmp = short_tmpdir()
    try:
        sock_path = tmp / "web.sock"
        notify_path = tmp / "notify.sock"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
            notify.bind(str(notify_path))
            notify.settimeout(30)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("SLEIGH_", "LISTEN_"))}
            env |= {"NOTIFY_SOCKET": str(notify_path), "SLEIGH_WEB_UNIX_SOCKET": str(sock_path)}
            proc = subprocess.Popen(web_argv(home), env=env, stderr=subprocess.PIPE, text=True)
            try:
                assert b"READY=1" in notify.recv(4096)
                assert get(sock_path, "/healthz")[0] == 200
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(30) == 0
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                assert proc.stderr is not None
                errors = proc.stderr.read()
                proc.stderr.close()
        assert "Traceback" not in errors
        assert not sock_path.exists()
    finally:
        shutil.rmtree(tmp)


def test_bad_configuration_is_named_and_refused(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLEIGH_")}
    empty = tmp_path / "sleigh.toml"
    empty.write_text("")
    result = subprocess.run(
        [*web_argv(tmp_path), "--config", str(empty)],
        env={**env, "SLEIGH_WEB_SHUTDOWN_TIMEOUT": "forever"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "SLEIGH_WEB_SHUTDOWN_TIMEOUT" in result.stderr
    assert "Traceback" not in result.stderr


def test_pings_the_watchdog_when_asked(daemon_factory: DaemonFactory, home: Path) -> None:
    daemon = daemon_factory.start(web_argv(home), env={"WATCHDOG_USEC": "200000"})
    daemon.expect("WATCHDOG=1", timeout=5)
    daemon.expect("WATCHDOG=1", timeout=5)
