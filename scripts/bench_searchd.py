#!/usr/bin/env python3
"""The "sleigh through the daemon" row of ``bench_search.py``.

:func:`daemon_runner` serves the index file ``bench_search`` built in process
(``where / "sleigh.idx"``, hard-linked into a home of its own) from a real
``sleigh-searchd`` (two worker threads, started as ``sleigh up`` would, ready on
``READY=1``), and gives each measuring thread a search call through
:class:`~sleigh.daemons.search.client.SearchClient`: ZeroMQ round trip, msgpack
both ways and the exact total included. The daemon is stopped with SIGTERM by
its pid when the next one starts and at exit.

Run it directly for the whole table with this row
(``bench_searchd.py [--quick] [--products N]``, the options of ``bench_search``);
``bench_search.py`` registers the row itself.
"""

from __future__ import annotations

import atexit
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sleigh.core_ext.search import FACETS, Query
from sleigh.daemons.search.client import SearchClient
from sleigh.daemons.search.index import index_name

NAME = "sleigh through the daemon"
READY_TIMEOUT = 120.0
_running: list[tuple[subprocess.Popen[bytes], Path]] = []


def _stop_all() -> None:
    """Stop every daemon started here (SIGTERM by pid), and remove its home."""
    while _running:
        proc, home = _running.pop()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(home, ignore_errors=True)


atexit.register(_stop_all)


def start_daemon(index_file: Path, home: Path, workers: int = 2) -> str:
    """Serve *index_file* from a daemon on *home*; its endpoint, once it is ready."""
    _stop_all()
    (home / "search").mkdir(parents=True, exist_ok=True)
    os.link(index_file, home / "search" / index_name(1))
    notify_path = home / "notify.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    env = {
        **os.environ,
        "NOTIFY_SOCKET": str(notify_path),
        "SLEIGH_SEARCH_WORKERS": str(workers),
        "SLEIGH_SEARCH_SOCKET": str(home / "searchd.sock"),
        "SLEIGH_LOGGING_LEVEL": "warning",
    }
    argv = [sys.executable, "-m", "sleigh.daemons.search", "--home", str(home)]
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL)
    _running.append((proc, home))
    deadline = time.monotonic() + READY_TIMEOUT
    try:
        while b"READY=1" not in _next_notification(notify, proc, deadline):
            pass
    finally:
        notify.close()
    return f"ipc://{home / 'searchd.sock'}"


def _next_notification(
    notify: socket.socket, proc: subprocess.Popen[bytes], deadline: float
) -> bytes:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sleigh-searchd exited with {proc.returncode} before READY=1")
        if select.select([notify], [], [], 0.1)[0]:
            return notify.recv(4096)
    raise RuntimeError(f"sleigh-searchd was not ready within {READY_TIMEOUT:g}s")


def conditions(q: Query) -> dict[str, Any]:
    """A :class:`Query` as the client's keyword arguments."""
    price = None
    if q.price_min is not None or q.price_max is not None:
        price = (q.price_min, q.price_max)
    return {
        "prefix": q.prefix,
        "category": q.category,
        "brands": q.brands,
        "price": price,
        "age": q.age,
        "in_stock": q.in_stock,
        "sort": q.sort,
        "offset": q.offset,
        "limit": q.limit,
        "facets": FACETS if q.facets else (),
    }


def daemon_runner(
    catalog: Any, where: Path
) -> tuple[float, int, Callable[[], Callable[[Query], object]]]:
    """``bench_search``'s runner: (start-up seconds, index bytes, per-thread search calls).

    The "build" figure of this row is the daemon's start-up (open, verify, serve):
    it serves the file built for the in-process row.
    """
    index_file = where / "sleigh.idx"
    home = Path(tempfile.mkdtemp(prefix="sd-", dir="/tmp"))
    started = time.perf_counter()
    endpoint = start_daemon(index_file, home)
    seconds = time.perf_counter() - started
    client = SearchClient([endpoint], timeout=60.0)

    def factory() -> Callable[[Query], object]:
        def search(q: Query) -> object:
            return client.search(q.text, **conditions(q))

        return search

    return seconds, index_file.stat().st_size, factory


def main(argv: list[str] | None = None) -> int:
    import bench_search  # registers this row itself

    return int(bench_search.main(argv))


if __name__ == "__main__":
    raise SystemExit(main())
