"""Workers sharing one socket share its connections: the table, and two real workers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from sleigh.daemons.runtime.activation import activation_kwargs
from sleigh.daemons.runtime.sockets import bind_tcp
from sleigh.webapp.accepts import SLOT, STALE, LoadTable, sweep, table_path
from tests.plugins.daemons import short_tmpdir

from .test_service import home, web_argv

__all__ = ["home"]  # the demo shop's home, a module fixture shared with test_service


class Clock:
    def __init__(self) -> None:
        self.now = 10 * STALE

    def __call__(self) -> int:
        return self.now


def test_each_worker_claims_its_own_slot_and_sees_the_others(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "t.load"
    first, second, third = (LoadTable(path, clock) for _ in range(3))
    assert {first.slot, second.slot, third.slot} == {0, 1, 2}
    assert first.least_other() == 0  # the others hold nothing yet
    second.write(7)
    third.write(4)
    first.write(1)
    assert first.least_other() == 4
    assert third.least_other() == 1
    third.close()
    assert first.least_other() == 7
    for table in (first, second):
        table.close()


def test_a_worker_that_stops_beating_is_left_out(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "t.load"
    quiet, busy = LoadTable(path, clock), LoadTable(path, clock)
    quiet.write(0)
    busy.write(30)
    assert busy.least_other() == 0
    clock.now += STALE  # quiet has not written since
    busy.write(30)
    assert busy.least_other() is None
    assert quiet.least_other() == 30
    quiet.close()
    busy.close()


def test_the_last_worker_out_removes_the_table(tmp_path: Path) -> None:
    path = tmp_path / "t.load"
    first, second = LoadTable(path), LoadTable(path)
    first.close()
    assert path.exists()  # second still holds a slot
    second.close()
    assert not path.exists()


def test_a_killed_workers_slot_is_free_again(tmp_path: Path) -> None:
    path = tmp_path / "t.load"
    code = (
        "import sys, time; from pathlib import Path; from sleigh.webapp.accepts import LoadTable;"
        f"t = LoadTable(Path({str(path)!r})); t.write(5); print(t.slot, flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "0"
        held = LoadTable(path)
        assert held.slot == 1 and held.least_other() == 5
        proc.kill()
        proc.wait()
        again = LoadTable(path)
        assert again.slot == 0  # the kernel dropped the dead worker's lock
        held.close()
        again.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_sweep_removes_only_tables_nobody_holds(tmp_path: Path) -> None:
    abandoned = tmp_path / "web-accepts-1.load"
    abandoned.write_bytes(bytes(SLOT.size * 64))
    held = LoadTable(tmp_path / "web-accepts-2.load")
    with socket.socket() as sock:
        mine = table_path(tmp_path, sock)
        mine.write_bytes(b"")
        sweep(tmp_path, mine)
        assert mine.exists()
    assert not abandoned.exists()
    assert held.path.exists()
    held.close()


def _start_workers(
    home: Path, sock: socket.socket, tmp: Path, count: int
) -> list[subprocess.Popen[bytes]]:
    """*count* sleigh-web workers on *sock*, each ready (READY=1 on its own notify socket)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLEIGH_", "NOTIFY_"))}
    procs = []
    for n in range(count):
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(tmp / f"n{n}.sock"))
        notify.settimeout(60)
        environ = {**env, "NOTIFY_SOCKET": notify.getsockname()}
        kwargs = activation_kwargs(web_argv(home), [sock], environ)
        procs.append(
            subprocess.Popen(**kwargs, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
        with notify:
            while b"READY=1" not in notify.recv(4096):
                pass
    return procs


def _healthz_pids(port: int, connections: int) -> Counter[int]:
    """Open *connections* at once, then ask /healthz on each: the pids that answered."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(connections)]
    try:
        time.sleep(0.2)  # let the workers take every one before any request comes
        pids: Counter[int] = Counter()
        for s in socks:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        for s in socks:
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            pids[json.loads(data.partition(b"\r\n\r\n")[2])["pid"]] += 1
        return pids
    finally:
        for s in socks:
            s.close()


def test_two_workers_on_one_socket_take_half_the_connections_each(home: Path) -> None:
    tmp = short_tmpdir()
    sock = bind_tcp("127.0.0.1", 0)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs = _start_workers(home, sock, tmp, 2)
        tables = list((home / "run").glob("web-accepts-*.load"))
        assert len(tables) == 1
        for _ in range(3):
            pids = _healthz_pids(sock.getsockname()[1], 32)
            assert set(pids) == {p.pid for p in procs}
            assert all(12 <= n <= 20 for n in pids.values()), pids
        for proc in procs:  # one after the other: two stopping at once may both leave
            proc.send_signal(signal.SIGTERM)  # it (the next worker to start sweeps it)
            assert proc.wait(30) == 0
        assert not tables[0].exists()  # the last worker out removed it
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        sock.close()
        for leftover in tmp.iterdir():
            leftover.unlink()
        tmp.rmdir()
