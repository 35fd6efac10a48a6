"""The storefront's processes for the web benchmarks (``bench_web.py``,
``profile_web.py``): the demo catalog and its search index in a home, the daemons
and ``sleigh-web`` workers started as ``sleigh up`` starts them (sockets handed over
as ``LISTEN_FDS``, ``READY=1`` awaited), their CPU time read from ``/proc``, and every
process stopped by PID; the catalog in SQLite (the default) or in a throw-away
PostgreSQL database (:func:`scratch_database`). The yardsticks of ``bench_web.py``
are started by ``yardsticks.py``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from sleigh.daemons.control.cache_cmd import NICE as CACHED_NICE
from sleigh.daemons.control.supervisor import renice
from sleigh.daemons.control.throttle_cmd import NICE as THROTTLED_NICE
from sleigh.daemons.runtime.activation import activation_kwargs
from sleigh.webapp.db.engine import redacted

#: The PostgreSQL server ``--postgres`` names when given no URL (as the tests' default).
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


class BenchError(Exception):
    """A server did not start, a tool failed, or its output was not understood."""


def _tree(pid: int) -> list[int]:
    """*pid* and its descendants (nginx's workers, ``/bin/sh``-free since it ``exec``\\ s)."""
    out, stack = [], [pid]
    while stack:
        node = stack.pop()
        out.append(node)
        try:
            tasks = Path(f"/proc/{node}/task").iterdir()
            for task in tasks:
                stack.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return out


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds of *pids* and their descendants so far."""
    ticks = 0
    for pid in {p for root in pids for p in _tree(root)}:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2 :].split()
        ticks += int(rest[11]) + int(rest[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def process_name(pid: int) -> str:
    """``sleigh-throttle`` for a daemon run as ``-m sleigh.daemons.throttle``, ``web`` for a
    web worker, else the program's name."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return str(pid)
    for arg in argv:
        if arg.startswith("sleigh.daemons."):
            return "sleigh-" + arg.rsplit(".", 1)[1]
        if arg.startswith("sleigh.webapp"):
            return "web"
    return Path(argv[0]).name


class Processes:
    """Every process this run started, stopped by PID."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.running: list[subprocess.Popen[bytes]] = []

    def start(
        self,
        argv: list[str],
        env: dict[str, str],
        name: str,
        *,
        sockets: Sequence[socket.socket] = (),
        notify: bool = True,
        copies: int = 0,
    ) -> list[subprocess.Popen[bytes]]:
        """Start *argv* (handing over *sockets*), logging to ``name.log``, and wait for
        ``READY=1`` if *notify*; with *copies*, that many at once (``name1``, ``name2``…)."""
        names = [f"{name}{i + 1}" for i in range(copies)] if copies else [name]
        started = []
        for each in names:
            ready = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            ready.bind(str(self.tmp / f"{each}.notify"))
            child_env = {**env, "NOTIFY_SOCKET": str(self.tmp / f"{each}.notify")}
            kwargs = (
                activation_kwargs(argv, sockets, child_env)
                if sockets
                else {"args": argv, "env": child_env}
            )
            with open(self.tmp / f"{each}.log", "ab") as log:
                proc = subprocess.Popen(**kwargs, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            self.running.append(proc)
            started.append((each, ready, proc))
        try:
            for each, ready, proc in started:
                if notify:
                    self._wait_ready(ready, proc, each)
        finally:
            for each, ready, _ in started:
                ready.close()
                (self.tmp / f"{each}.notify").unlink()
        return [proc for _, _, proc in started]

    def _wait_ready(self, ready: socket.socket, proc: subprocess.Popen[bytes], name: str) -> None:
        deadline = time.monotonic() + 60
        ready.settimeout(0.2)
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if b"READY=1" in ready.recv(4096).split(b"\n"):
                    return
            except TimeoutError:
                continue
        log = (self.tmp / f"{name}.log").read_text(errors="replace")[-2000:]
        raise BenchError(f"{name} did not send READY=1 (exit {proc.poll()}):\n{log}")

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM, wait up to 30 s, then SIGKILL."""
        if proc in self.running:
            self.running.remove(proc)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.returncode not in (0, -signal.SIGTERM):
            print(f"bench_web: pid {proc.pid} exited {proc.returncode}", file=sys.stderr)

    def stop_all(self) -> None:
        for proc in reversed(list(self.running)):
            self.stop(proc)


def in_scratch(name: str, body: Callable[[Path, Processes], None]) -> int:
    """Run *body* with a fresh temporary directory and the processes it starts there;
    every process is stopped by PID and the directory removed after. The exit status:
    0, or 1 with the :class:`BenchError` printed under *name*."""
    tmp = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    procs = Processes(tmp)
    try:
        body(tmp, procs)
        return 0
    except BenchError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


def clean_env() -> dict[str, str]:
    drop = ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")
    return {k: v for k, v in os.environ.items() if not k.startswith("SLEIGH_") and k not in drop}


#: The load comes from one address, so the per-address rules would refuse it: the
#: benchmark's rules are far above what it sends. Every request is still checked
#: (one round trip to sleigh-throttled, the session and address keys charged).
_BENCH_RULES = """
[rules.ip]
rate = 10000000
per = "1s"
burst = 10000000

[rules.session]
rate = 10000000
per = "1s"
burst = 10000000
"""


def write_config(home: Path, database_url: str = "") -> Path:
    """The shop's config file for the benchmark: generous throttle rules, and the
    database at *database_url* (empty: SQLite in *home*)."""
    home.mkdir(parents=True, exist_ok=True)
    rules = home / "bench-rules.toml"
    rules.write_text(_BENCH_RULES)
    config = home / "sleigh.toml"
    database = f'[database]\nurl = "{database_url}"\n' if database_url else ""
    config.write_text(f'[throttle]\nrules = "{rules}"\n{database}')
    return config


def shop_argv(module: str, home: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        module,
        "--home",
        str(home),
        "--config",
        str(home / "sleigh.toml"),
    ]


def start_daemons(procs: Processes, home: Path) -> list[int]:
    """``sleigh-cached`` and ``sleigh-throttled`` (at their units' niceness where allowed,
    as ``sleigh up`` runs them) and ``sleigh-searchd`` on its first search index, with the config
    :func:`load_catalog` wrote in *home*; their pids."""
    (cached,) = procs.start(shop_argv("sleigh.daemons.cache", home), clean_env(), "cached")
    argv = shop_argv("sleigh.daemons.throttle", home)
    (throttled,) = procs.start(argv, clean_env(), "throttled")
    niceness = (("cached", cached, CACHED_NICE), ("throttled", throttled, THROTTLED_NICE))
    for name, proc, nice in niceness:
        reniced = renice(name, proc.pid, nice)
        print(f"  sleigh-{name} at nice {nice if reniced else 0}", flush=True)
    build_search_index(home)
    (searchd,) = procs.start(shop_argv("sleigh.daemons.search", home), clean_env(), "searchd")
    return [cached.pid, throttled.pid, searchd.pid]


def start_web(
    procs: Processes, home: Path, sock: socket.socket, workers: int
) -> list[subprocess.Popen[bytes]]:
    """*workers* ``sleigh-web`` processes sharing *sock*."""
    argv = shop_argv("sleigh.webapp", home)
    return procs.start(argv, clean_env(), "web", sockets=[sock], copies=workers)


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as answer:
        body: bytes = answer.read()
        return body


def load_catalog(home: Path, database_url: str, products: int) -> list[int]:
    """The benchmark's config in *home* (:func:`write_config`), then the demo catalog in
    its database (*database_url*; empty: SQLite in *home*); its product ids in order."""
    from sleigh.daemons.control.cli import main as sleigh

    config = write_config(home, database_url)
    argv = ["demo", "load", "--products", str(products), "--home", str(home)]
    if sleigh([*argv, "--config", str(config)]) != 0:
        raise BenchError("sleigh demo load failed")
    return [row[0] for row in query(home, database_url, "SELECT id FROM products ORDER BY id")]


def query(home: Path, database_url: str, sql: str) -> list[Any]:
    """The rows of *sql* (no parameters) in the catalog's database (*database_url*;
    empty: SQLite in *home*)."""
    if not database_url:
        with contextlib.closing(sqlite3.connect(home / "sleigh.db")) as db:
            return db.execute(sql).fetchall()

    async def rows() -> list[Any]:
        conn = await asyncpg.connect(_dsn(database_url), timeout=10)
        try:
            return [tuple(row) for row in await conn.fetch(sql)]
        finally:
            await conn.close()

    return asyncio.run(rows())


def add_postgres_option(parser: argparse.ArgumentParser) -> None:
    """``--postgres [URL]``: the benchmark's catalog on a PostgreSQL server, not SQLite."""
    parser.add_argument(
        "--postgres",
        nargs="?",
        const=DEFAULT_POSTGRES,
        metavar="URL",
        help="the catalog in a throw-away database on this PostgreSQL server (a database"
        f" there to connect through; default {DEFAULT_POSTGRES}), not in SQLite",
    )


def database_label(server: str | None) -> str:
    """Where the catalog is, for a benchmark's header (*server*: ``--postgres``)."""
    return "SQLite" if server is None else f"PostgreSQL at {redacted(server)}"


@contextlib.contextmanager
def scratch_database(server: str | None) -> Iterator[str]:
    """A throw-away database on the PostgreSQL server at *server* (the URL of a database
    there to connect through: ``postgresql://`` or ``postgresql+asyncpg://``), dropped on
    the way out, even from under the connections still open to it; its URL.
    ``None``: no database is made (``""``: the shop's SQLite default)."""
    if server is None:
        yield ""
        return
    name = f"sleigh_bench_{secrets.token_hex(4)}"
    try:
        asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise BenchError(f"cannot create a database on {redacted(server)}: {exc}") from None
    url = make_url(server)
    if url.drivername in ("postgresql", "postgres"):  # as psql takes it: the shop's driver
        url = url.set(drivername="postgresql+asyncpg")
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(server: str, statement: str) -> None:
    conn = await asyncpg.connect(_dsn(server), timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _dsn(url: str) -> str:
    """*url* (``postgresql+asyncpg://...``) as asyncpg takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def build_search_index(home: Path) -> None:
    """The first search index of *home*'s catalog, built before ``sleigh-searchd`` starts."""
    from sleigh.daemons.control.cli import main as sleigh

    argv = ["search", "reindex", "--no-swap", "--home", str(home)]
    if sleigh([*argv, "--config", str(home / "sleigh.toml")]) != 0:
        raise BenchError("sleigh search reindex failed")
