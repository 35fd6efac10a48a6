"""``sleigh-cached`` end to end: a real daemon, a real LMDB file, real clients.

redis-py and redis-cli speak to it unchanged; conformance, TTLs, eviction,
group commit, ``kill -9`` durability, and a stream of garbage.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.maint_notifications import MaintNotificationsConfig
from redis.retry import Retry

from sleigh.daemons.cache.direct import DirectReader
from tests.plugins.cache import CacheDaemon, StartCached
from tests.plugins.daemons import DaemonFactory, short_tmpdir
from tests.plugins.procfs import assert_steady


@pytest.fixture
def r(cached: CacheDaemon) -> Iterator[redis.Redis]:
    client = redis.Redis(unix_socket_path=str(cached.socket_path), socket_timeout=10)
    yield client
    client.close()


def test_strings_and_ttls(r: redis.Redis) -> None:
    assert r.ping() is True
    assert r.echo(b"hi") == b"hi"
    assert r.set("k", b"v") is True
    assert r.get("k") == b"v"
    assert r.ttl("k") == -1
    assert r.set("t", b"1", ex=100) and 99 <= r.ttl("t") <= 100
    assert r.set("p", b"1", px=1500) and 1400 <= r.pttl("p") <= 1500
    assert r.set("a", b"1", exat=int(time.time()) + 50) and 48 <= r.ttl("a") <= 50
    assert r.get("missing") is None and r.ttl("missing") == -2
    assert r.set("k", b"new", nx=True) is None
    assert r.set("fresh", b"x", xx=True) is None
    assert r.set("t", b"2", xx=True, keepttl=True) and r.ttl("t") > 90
    assert r.mget("k", "missing", "t") == [b"v", None, b"2"]
    assert r.exists("k", "t", "missing") == 2
    assert r.expire("k", 30) is True and 29 <= r.ttl("k") <= 30
    assert r.pexpire("k", 100_000) is True
    assert r.expire("missing", 10) is False
    assert r.delete("k", "missing") == 1
    assert r.dbsize() == 3
    assert r.flushdb() is True
    assert r.dbsize() == 0


def test_binary_keys_and_values(r: redis.Redis) -> None:
    value = bytes(range(256)) * 4 + b"\r\n\x00"
    assert r.set(b"\x00bin\r\nkey", value)
    assert r.get(b"\x00bin\r\nkey") == value


def test_expired_entries_are_never_served(cached: CacheDaemon, r: redis.Redis) -> None:
    r.set("soon", b"x", px=150)
    reader = DirectReader(cached.env_path)
    try:
        assert reader.get(b"soon") == b"x"
        deadline = time.monotonic() + 5
        while r.get("soon") is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert r.get("soon") is None
        assert reader.get(b"soon") is None
        assert r.exists("soon") == 0
    finally:
        reader.close()


def test_scan_and_info(r: redis.Redis) -> None:
    for i in range(150):
        r.set(f"user:{i}", b"x", ex=60)
    r.set("other", b"y")
    assert sorted(r.scan_iter(match="user:*", count=40)) == sorted(
        f"user:{i}".encode() for i in range(150)
    )
    info = r.info()
    assert info["redis_version"] == "7.0.0"
    assert info["keyspace_hits"] >= 0 and "used_memory" in info
    assert info["db0"]["keys"] == 151
    assert set(r.info("stats")) >= {"keyspace_hits", "keyspace_misses", "evicted_keys"}


def command(r: redis.Redis, *args: str) -> object:
    return r.execute_command(*args)


def test_errors_keep_the_connection(r: redis.Redis) -> None:
    with pytest.raises(redis.ResponseError, match="unknown command"):
        command(r, "LPUSH", "l", "x")
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        command(r, "GET")
    with pytest.raises(redis.ResponseError, match="syntax error"):
        command(r, "SET", "k", "v", "EX")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        command(r, "SET", "k", "v", "EX", "soon")
    with pytest.raises(redis.ResponseError, match="invalid expire time"):
        command(r, "SET", "k", "v", "PX", "0")
    with pytest.raises(redis.ResponseError, match="key_max"):
        r.set(b"k" * 600, b"v")
    assert r.ping() is True
    assert r.client_setname("worker-1") is True
    assert r.client_getname() == "worker-1"


def test_pipelined_commands_answer_in_order_and_read_their_writes(r: redis.Redis) -> None:
    pipe = r.pipeline(transaction=False)
    for i in range(200):
        pipe.set(f"k{i}", str(i).encode())
        pipe.get(f"k{i}")
        if i % 3 == 0:
            pipe.delete(f"k{i}")
            pipe.get(f"k{i}")
    results = pipe.execute()
    expected: list[object] = []
    for i in range(200):
        expected += [True, str(i).encode()]
        if i % 3 == 0:
            expected += [1, None]
    assert results == expected


def test_redis_cli_works_unchanged(cached: CacheDaemon) -> None:
    def cli(*args: str) -> str:
        done = subprocess.run(
            ["redis-cli", "-s", str(cached.socket_path), *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert cli("PING") == "PONG"
    assert cli("SET", "greeting", "hello", "EX", "60") == "OK"
    assert cli("GET", "greeting") == "hello"
    assert "redis_version:7.0.0" in cli("INFO", "server")
    assert "ERR unknown command" in cli("HSET", "h", "f", "v")


@pytest.mark.parametrize("sync", ["none", "full"])
def test_concurrent_writers_share_commits(cached_factory: StartCached, sync: str) -> None:
    daemon = cached_factory(sync=sync)
    clients = [
        redis.Redis(unix_socket_path=str(daemon.socket_path), socket_timeout=30) for _ in range(8)
    ]

    def write(n: int, client: redis.Redis) -> None:
        pipe = client.pipeline(transaction=False)
        for i in range(300):
            pipe.set(f"w{n}:{i}", b"x" * 100, ex=600)
        assert all(pipe.execute())

    threads = [threading.Thread(target=write, args=(n, c)) for n, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    stats = clients[0].info("stats")
    assert clients[0].dbsize() == 2400
    assert stats["sleigh_writes_committed"] == 2400
    assert stats["sleigh_commits"] < 2400
    assert stats["sleigh_largest_group"] > 1
    for c in clients:
        c.close()


def test_eviction_keeps_a_small_map_serving(cached_factory: StartCached) -> None:
    daemon = cached_factory(map_size="2MiB", low_water="0.5", high_water="0.8")
    client = redis.Redis(unix_socket_path=str(daemon.socket_path), socket_timeout=30)
    value = b"v" * 4000
    refused = 0
    for i in range(2000):
        try:
            client.set(f"k{i}", value, ex=60 + i)  # later keys expire later
        except redis.ResponseError as exc:
            assert "cache is full" in str(exc)
            refused += 1
    stats = client.info()
    assert stats["evicted_keys"] > 0
    assert refused < 50
    assert client.get("k1999") == value  # the latest-expiring survive
    assert client.get("k0") is None  # the soonest-expiring went first
    assert client.ping()
    client.close()


def test_oversized_and_too_many(cached_factory: StartCached) -> None:
    daemon = cached_factory(value_max="1KiB", request_max="4KiB", max_connections="3")
    client = redis.Redis(unix_socket_path=str(daemon.socket_path), socket_timeout=10)
    with pytest.raises(redis.ResponseError, match="value_max"):
        client.set("big", b"x" * 2000)
    assert client.get("big") is None
    with socket.socket(socket.AF_UNIX) as raw:
        raw.connect(str(daemon.socket_path))
        raw.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n")
        reply = _read_until_closed(raw)
    assert reply.startswith(b"-ERR Protocol error") and b"request_max" in reply
    extra = [socket.socket(socket.AF_UNIX) for _ in range(3)]
    try:
        for s in extra:
            s.connect(str(daemon.socket_path))
        assert b"max number of clients" in _read_until_closed(extra[-1])
    finally:
        for s in extra:
            s.close()
    assert client.ping()
    client.close()


def _read_until_closed(sock: socket.socket, limit: float = 10) -> bytes:
    sock.settimeout(limit)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_garbage_gets_errors_and_leaks_nothing(cached: CacheDaemon) -> None:
    rng = __import__("random").Random(7)
    shapes: list[Callable[[], bytes]] = [
        lambda: bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))),
        lambda: b"*2\r\n$3\r\nGET\r\n:1\r\n",
        lambda: b"*-5\r\n*1\r\n$-1\r\n",
        lambda: b"$999999999999\r\n",
        lambda: b"*1\r\n$4\r\nPING\r\nX" * 3 + b"*a\r\n",
    ]

    def round_of_garbage(n: int) -> None:
        for i in range(n):
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(cached.socket_path))
                s.sendall(shapes[i % len(shapes)]())
                s.shutdown(socket.SHUT_WR)
                _read_until_closed(s)

    assert_steady([cached.daemon.pid], round_of_garbage, 200, 1000)
    client = redis.Redis(unix_socket_path=str(cached.socket_path))
    assert client.ping()
    assert client.info("stats")["sleigh_protocol_errors"] > 0
    client.close()


def test_kill_9_loses_no_acknowledged_write(cached_factory: StartCached, tmp_path: Path) -> None:
    home = tmp_path / "durable"
    first = cached_factory(home)
    acked: list[list[str]] = [[] for _ in range(4)]
    stop = threading.Event()

    def storm(n: int) -> None:
        client = redis.Redis(
            unix_socket_path=str(first.socket_path),
            socket_timeout=5,
            retry=Retry(NoBackoff(), 0),  # a dead daemon must end the storm, not be retried
        )
        i = 0
        try:
            while not stop.is_set():
                key = f"s{n}:{i}"
                client.set(key, key.encode() * 20, ex=3600)
                acked[n].append(key)
                i += 1
        except (redis.ConnectionError, redis.TimeoutError):
            pass
        finally:
            client.close()

    threads = [threading.Thread(target=storm, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    first.daemon.proc.send_signal(signal.SIGKILL)
    first.daemon.wait(10)
    stop.set()
    for t in threads:
        t.join(10)
    written = [key for keys in acked for key in keys]
    assert len(written) > 100

    second = cached_factory(home)
    client = redis.Redis(unix_socket_path=str(second.socket_path), socket_timeout=30)
    values = client.mget(written)
    missing = [key for key, value in zip(written, values, strict=True) if value is None]
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"
    client.close()


def test_stops_on_sigterm_and_removes_the_socket_it_bound(
    daemon_factory: DaemonFactory, tmp_path: Path
) -> None:
    tmp = short_tmpdir()
    sock = tmp / "cached.sock"
    daemon = daemon_factory.start(
        [
            sys.executable,
            "-m",
            "sleigh.daemons.cache",
            "--home",
            str(tmp_path / "home"),
        ],
        env={"SLEIGH_CACHE_SOCKET": str(sock), "SLEIGH_CACHE_MAP_SIZE": "16MiB"},
        binds_itself=sock,
    )
    client = redis.Redis(unix_socket_path=str(sock))
    client.set("k", b"v")
    client.close()
    assert daemon.stop() == 0
    assert not sock.exists()
    assert any("STOPPING=1" in n for n in daemon.notifications)


def test_second_sigterm_cuts_a_stuck_drain_short(cached_factory: StartCached) -> None:
    daemon = cached_factory(shutdown_timeout="60s")
    loader = redis.Redis(unix_socket_path=str(daemon.socket_path))
    loader.set("big", b"x" * 512 * 1024)
    loader.close()
    stuck = socket.socket(socket.AF_UNIX)
    try:
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect(str(daemon.socket_path))
        # Ask for far more than the socket buffers hold, and never read it.
        stuck.sendall(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n" * 200)
        time.sleep(0.5)
        daemon.daemon.send_signal(signal.SIGTERM)
        daemon.daemon.expect("STOPPING=1")
        time.sleep(0.5)
        assert daemon.daemon.proc.poll() is None, "it should still be draining the stuck client"
        daemon.daemon.send_signal(signal.SIGTERM)
        assert daemon.daemon.wait(10) == 1
    finally:
        stuck.close()


def test_info_counts_direct_reads_of_other_processes(cached: CacheDaemon, r: redis.Redis) -> None:
    r.set("here", b"x", ex=60)
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from sleigh.daemons.cache.direct import DirectReader\n"
        "reader = DirectReader(Path(sys.argv[1]))\n"
        "found = [reader.get(b'here') for _ in range(7)]\n"
        "found += [reader.get(b'gone') for _ in range(3)]\n"
        "reader.close()\n"
        "sys.exit(0 if found.count(b'x') == 7 else 1)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(cached.env_path)], timeout=60)
    assert done.returncode == 0
    stats = r.info("stats")
    assert stats["sleigh_direct_hits"] == 7
    assert stats["sleigh_direct_misses"] == 3
    assert stats["sleigh_direct_reader_processes"] == 0  # that process is gone
    again = r.info("stats")
    assert again["sleigh_direct_hits"] == 7  # folded into the total, counted once


def test_the_python_parser_twin_serves_the_same(
    daemon_factory: DaemonFactory, tmp_path: Path
) -> None:
    daemon = daemon_factory.start(
        [sys.executable, "-m", "sleigh.daemons.cache", "--home", str(tmp_path / "home")],
        env={"SLEIGH_NO_EXTENSIONS": "1", "SLEIGH_CACHE_MAP_SIZE": "16MiB"},
    )
    assert isinstance(daemon.address, Path)
    client = redis.Redis(unix_socket_path=str(daemon.address))
    pipe = client.pipeline(transaction=False)
    pipe.set("a", b"1", ex=60)
    pipe.get("a")
    pipe.mget("a", "b")
    pipe.delete("a")
    pipe.get("a")
    assert pipe.execute() == [True, b"1", [b"1", None], 1, None]
    with pytest.raises(redis.ResponseError, match="unknown command"):
        command(client, "LPUSH", "l", "x")
    client.close()
    check = subprocess.run(
        [sys.executable, "-c", "import sleigh.daemons.cache.protocol as p; print(p.NATIVE_PARSER)"],
        env={**os.environ, "SLEIGH_NO_EXTENSIONS": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.stdout.strip() == "False"


@pytest.mark.parametrize("protocol", [2, 3])
def test_batches_of_plain_gets_and_sets(cached: CacheDaemon, protocol: int) -> None:
    # redis-py 7.x turns on maintenance notifications for RESP3 and then fails
    # over a Unix socket (no host); Redis() does not pass the setting on for
    # Unix sockets, so the pool is made here.
    pool = redis.ConnectionPool(
        connection_class=redis.UnixDomainSocketConnection,
        path=str(cached.socket_path),
        protocol=protocol,
        maint_notifications_config=MaintNotificationsConfig(enabled=False),
    )
    client = redis.Redis(connection_pool=pool)
    sets = client.pipeline(transaction=False)
    for i in range(50):
        sets.set(f"k{i}", str(i).encode(), px=100 if i % 10 == 0 else 60_000)
    assert sets.execute() == [True] * 50
    gets = client.pipeline(transaction=False)
    for i in range(60):
        gets.get(f"k{i}")
    assert gets.execute() == [str(i).encode() if i < 50 else None for i in range(60)]
    deadline = time.monotonic() + 5
    while client.get("k0") is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    again = client.pipeline(transaction=False)
    for i in range(0, 50, 5):
        again.get(f"k{i}")
    assert again.execute() == [None if i % 10 == 0 else str(i).encode() for i in range(0, 50, 5)]
    stats = client.info("stats")
    assert stats["keyspace_hits"] >= 55 and stats["keyspace_misses"] >= 15
    client.close()


def test_serves_a_handed_over_tcp_socket_and_quit_closes(
    daemon_factory: DaemonFactory, tmp_path: Path
) -> None:
    daemon = daemon_factory.start(
        [sys.executable, "-m", "sleigh.daemons.cache", "--home", str(tmp_path / "home")],
        env={"SLEIGH_CACHE_MAP_SIZE": "16MiB"},
        tcp=True,
    )
    assert isinstance(daemon.address, tuple)
    host, port = daemon.address
    client = redis.Redis(host=host, port=port)
    assert client.set("over-tcp", b"yes") and client.get("over-tcp") == b"yes"
    client.close()
    with socket.create_connection((host, port), timeout=10) as raw:
        raw.sendall(b"PING\r\nQUIT\r\nPING\r\n")
        assert _read_until_closed(raw) == b"+PONG\r\n+OK\r\n"


def test_sleigh_cache_commands(cached: CacheDaemon, r: redis.Redis) -> None:
    r.set("greeting", b"\x92\xa5hello\x01", ex=60)  # msgpack of ["hello", 1]
    r.set("other", b"x")
    env = {**os.environ, "SLEIGH_CACHE_SOCKET": str(cached.socket_path)}

    def sleigh(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "sleigh.daemons.control", "--home", str(cached.home)]
        return subprocess.run(
            [*argv, "cache", *args], capture_output=True, text=True, timeout=60, env=env
        )

    stats = sleigh("stats")
    assert stats.returncode == 0 and "keyspace_hits" in stats.stdout
    shown = sleigh("get", "greeting")
    assert shown.returncode == 0 and '"hello"' in shown.stdout and "expires in" in shown.stdout
    assert sleigh("get", "missing").returncode == 1
    deleted = sleigh("del", "other", "missing")
    assert deleted.returncode == 0 and "deleted 1 of 2" in deleted.stdout
    refused = sleigh("flush")  # no terminal and no --yes: refused, nothing flushed
    assert refused.returncode == 2 and r.exists("greeting") == 1
    assert sleigh("flush", "--yes").returncode == 0
    assert r.dbsize() == 0
