"""Notifier and watchdog_interval against real datagram sockets."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sleigh.daemons.runtime.notify import Notifier, watchdog_interval
from tests.plugins.daemons import short_tmpdir


@pytest.fixture
def manager() -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket standing in for systemd, and its ``NOTIFY_SOCKET`` value."""
    tmpdir = short_tmpdir()
    path = tmpdir / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(10)
    yield sock, str(path)
    sock.close()
    shutil.rmtree(tmpdir)


def lines(sock: socket.socket) -> list[str]:
    """The next datagram, split into its lines."""
    return sock.recv(4096).decode().split("\n")


def test_every_message_arrives_as_one_datagram(manager: tuple[socket.socket, str]) -> None:
    sock, address = manager
    notifier = Notifier({"NOTIFY_SOCKET": address})
    assert notifier.enabled
    assert notifier.ready()
    assert lines(sock) == ["READY=1"]
    assert notifier.ready("serving 3 sockets")
    assert lines(sock) == ["READY=1", "STATUS=serving 3 sockets"]
    assert notifier.stopping()
    assert lines(sock) == ["STOPPING=1"]
    assert notifier.watchdog()
    assert lines(sock) == ["WATCHDOG=1"]
    assert notifier.status("warming the cache")
    assert lines(sock) == ["STATUS=warming the cache"]
    assert notifier.send(STATUS="x", ERRNO=5)
    assert lines(sock) == ["STATUS=x", "ERRNO=5"]
    assert notifier.send_raw("EXTEND_TIMEOUT_USEC=5000000")
    assert lines(sock) == ["EXTEND_TIMEOUT_USEC=5000000"]
    notifier.close()


def test_reloading_carries_the_monotonic_clock(manager: tuple[socket.socket, str]) -> None:
    sock, address = manager
    notifier = Notifier({"NOTIFY_SOCKET": address})
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert notifier.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    first, second = lines(sock)
    assert first == "RELOADING=1"
    key, value = second.split("=")
    assert key == "MONOTONIC_USEC" and before <= int(value) <= after
    notifier.close()


def test_abstract_namespace_socket() -> None:
    name = f"sleigh-test-{secrets.token_hex(8)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(10)
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.ready()
        assert lines(sock) == ["READY=1"]
        notifier.close()


def test_close_then_send_again(manager: tuple[socket.socket, str]) -> None:
    sock, address = manager
    notifier = Notifier({"NOTIFY_SOCKET": address})
    assert notifier.status("one")
    notifier.close()
    notifier.close()
    assert notifier.status("two")
    assert lines(sock) == ["STATUS=one"]
    assert lines(sock) == ["STATUS=two"]
    notifier.close()


def test_without_notify_socket_everything_is_a_no_op() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert not notifier.ready("x")
    assert not notifier.reloading()
    assert not notifier.stopping()
    assert not notifier.watchdog()
    assert not notifier.status("x")
    assert not notifier.send(A=1)
    assert not notifier.send_raw("A=1")
    notifier.close()
    assert not Notifier({"NOTIFY_SOCKET": ""}).enabled


def test_a_failed_send_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    with caplog.at_level(logging.DEBUG, "sleigh.runtime.notify"):
        assert notifier.ready() is False
    [record] = caplog.records
    assert record.levelno == logging.DEBUG and "READY=1" in record.getMessage()
    notifier.close()


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "4000000"}, 2.0),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "OURS"}, 1.5),
        ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "OTHER"}, None),
        ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "x"}, None),
    ],
)
def test_watchdog_interval(environ: dict[str, str], expected: float | None) -> None:
    pids = {"OURS": str(os.getpid()), "OTHER": str(os.getpid() + 1)}
    environ = {k: pids.get(v, v) for k, v in environ.items()}
    assert watchdog_interval(environ) == expected


def test_watchdog_interval_for_a_given_pid() -> None:
    environ = {"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "42"}
    assert watchdog_interval(environ, pid=42) == 0.5
    assert watchdog_interval(environ, pid=43) is None
