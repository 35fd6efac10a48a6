"""Compare ``sleigh-cached`` with raw LMDB and with Redis, on one machine, in one run.

Workload: ``--keys`` keys ``prod:N``, each a ~1 KB product
part encoded with sleigh's msgpack codec, all with a one-hour TTL; GETs pick
keys by Zipf popularity (s=1.1, fixed seed, pure-Python sampler). Rows:

1. sleigh direct read: ``CacheClient.get`` reading the LMDB file (TTL check, decode);
2. raw py-lmdb get on the same file: a fresh read txn per get, no decode (the limit);
3. sleigh over its Unix socket through redis-py (``GET``, no decode);
4. Redis (a private ``redis-server`` on a Unix socket) through redis-py, the same;
5. ``redis-benchmark -s`` against both (GET, SET; plain and ``-P 32``), plus SET on a
   ``sync=full`` sleigh daemon;
6. direct-read latency with and without a writer doing 10,000 sets/s through the socket.

Every client row runs in its own fresh process. Run:
``.venv/bin/python scripts/bench_cache.py [--keys N] [--requests N] [--seconds S] [--quick]``
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lmdb
import redis
from cache_report import benchmark_rows, print_table, print_targets, row_from
from cache_workload import (
    SEED,
    TTL_S,
    VALUE_SHAPE,
    WRITE_RATE,
    WRITE_TICK_S,
    ZIPF_S,
    key,
    part,
)
from machine import condition, cpu_clock, during

from sleigh.daemons.cache.client import CacheClient
from sleigh.daemons.cache.codec import encode

CLIENTS = 50
ROW_DIRECT = "sleigh direct read (CacheClient.get)"
ROW_RAW = "raw py-lmdb get (no decode)"
ROW_READER = "  part: DirectReader.get_decoded(k, len)"
ROW_DECODE = "  part: codec.decode of the payload"
ROW_SOCKET = "sleigh GET via redis-py"
ROW_REDIS = "Redis GET via redis-py"
ROW_IDLE = "direct read, no writer"
ROW_LOADED = "direct read, 10k sets/s writer"


class BenchError(Exception):
    """A server did not start, a worker failed, or a tool's output was not understood."""


# -- workload -------------------------------------------------------------------


# -- measurement, run inside worker processes -----------------------------------


# -- processes -------------------------------------------------------------------


def _worker_argv(spec: dict[str, Any]) -> list[str]:
    return [
        sys.executable,
        str(Path(__file__).resolve().with_name("cache_workload.py")),
        json.dumps(spec),
    ]


def run_worker(spec: dict[str, Any]) -> dict[str, float]:
    done = subprocess.run(
        _worker_argv(spec), capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"worker {spec['kind']} failed:\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return result


class Processes:
    """Every long-running process this run started, stopped by PID at the end."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.running: list[subprocess.Popen[bytes]] = []

    def start(
        self, argv: list[str], env: dict[str, str], name: str, *, notify: bool = True
    ) -> subprocess.Popen[bytes]:
        """Start *argv*, logging to ``name.log``; wait for ``READY=1`` if *notify*.

        Without *notify* its stdout is a pipe (a worker's results).
        """
        path = self.tmp / f"{name}.notify"
        ready = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        with ready:
            ready.bind(str(path))
            with open(self.tmp / f"{name}.log", "wb") as log:
                proc = subprocess.Popen(
                    argv,
                    env={**env, "NOTIFY_SOCKET": str(path)},
                    stdin=subprocess.DEVNULL,
                    stdout=log if notify else subprocess.PIPE,
                    stderr=log,
                )
            self.running.append(proc)
            if notify:
                self._wait_ready(ready, proc, name)
        path.unlink()
        return proc

    def _wait_ready(self, ready: socket.socket, proc: subprocess.Popen[bytes], name: str) -> None:
        deadline = time.monotonic() + 30
        while (left := deadline - time.monotonic()) > 0 and proc.poll() is None:
            readable = select.select([ready], [], [], min(left, 0.2))[0]
            if readable and b"READY=1" in ready.recv(4096).split(b"\n"):
                return
        log = (self.tmp / f"{name}.log").read_text(errors="replace")[-2000:]
        raise BenchError(f"{name} did not send READY=1 (exit {proc.poll()}):\n{log}")

    def stop(self, proc: subprocess.Popen[bytes]) -> bytes:
        """SIGTERM, wait up to 20 s, then SIGKILL; what it wrote on a stdout pipe."""
        if proc in self.running:
            self.running.remove(proc)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        if proc.returncode != 0:
            print(
                f"bench_cache: pid {proc.pid} exited {proc.returncode}",
                file=sys.stderr,
            )
        return out or b""

    def stop_all(self) -> None:
        for proc in reversed(list(self.running)):
            self.stop(proc)


def _clean_env() -> dict[str, str]:
    drop = ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")
    return {k: v for k, v in os.environ.items() if not k.startswith("SLEIGH_") and k not in drop}


def start_sleigh(procs: Processes, home: Path, sync: str) -> tuple[Path, Path]:
    """A ``sleigh-cached`` on *home*: its socket and LMDB directory."""
    env = {**_clean_env(), "SLEIGH_CACHE_MAP_SIZE": "2GiB", "SLEIGH_CACHE_SYNC": sync}
    argv = [sys.executable, "-m", "sleigh.daemons.cache", "--home", str(home)]
    procs.start(argv, env, f"sleigh-{sync}")
    return home / "run" / "cached.sock", home / "cache"


def start_redis(procs: Processes, tmp: Path) -> Path:
    sock = tmp / "redis.sock"
    argv = shlex.split("redis-server --port 0 --unixsocketperm 700 --appendonly no --daemonize no")
    argv += ["--supervised", "systemd", "--unixsocket", str(sock), "--save", "", "--dir", str(tmp)]
    procs.start(argv, _clean_env(), "redis")
    return sock


def load(sleigh_sock: Path, redis_sock: Path, keys: int) -> tuple[float, float, list[int]]:
    """The same values under the same keys and TTL into both; seconds each, encoded sizes."""
    sizes: list[int] = []
    sleigh_s = redis_s = 0.0
    with CacheClient(sleigh_sock, direct=False, timeout=30) as cache:
        r = redis.Redis(unix_socket_path=str(redis_sock), protocol=2)
        for lo in range(0, keys, 1000):
            parts: dict[str | bytes, object] = {
                key(i): part(i) for i in range(lo, min(keys, lo + 1000))
            }
            t0 = time.perf_counter()
            cache.set_many(parts, TTL_S)
            t1 = time.perf_counter()
            pipe = r.pipeline(transaction=False)
            for k, v in parts.items():
                payload = encode(v)
                sizes.append(len(payload))
                pipe.set(k, payload, px=TTL_S * 1000)
            pipe.execute()
            sleigh_s, redis_s = sleigh_s + t1 - t0, redis_s + time.perf_counter() - t1
        r.close()
    return sleigh_s, redis_s, sizes


def redis_benchmark(sock: Path, tests: str, n: int, keys: int, pipeline: int) -> dict[str, Any]:
    """``redis-benchmark --csv``: test name -> (rps, p50 µs, p99 µs)."""
    argv = shlex.split(f"redis-benchmark -c {CLIENTS} -d 1024 -r {keys} -n {n} --csv -t {tests}")
    argv += ["-s", str(sock)]
    if pipeline > 1:
        argv += ["-P", str(pipeline)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    if done.returncode != 0 or not rows:
        raise BenchError(f"redis-benchmark failed: {done.stdout}\n{done.stderr}")
    return {
        row["test"]: (
            float(row["rps"]),
            float(row["p50_latency_ms"]) * 1000,
            float(row["p99_latency_ms"]) * 1000,
        )
        for row in rows
    }


# -- the run -----------------------------------------------------------------------------


def bench_servers(procs: Processes, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    sleigh_sock, env_path = start_sleigh(procs, tmp / "sleigh", "none")
    redis_sock = start_redis(procs, tmp)
    sleigh_s, redis_s, sizes = load(sleigh_sock, redis_sock, args.keys)
    print(
        f"values: {min(sizes)}-{max(sizes)} bytes encoded, mean {sum(sizes) / len(sizes):.0f};"
        f" load ({args.keys:,} pipelined SETs of 1000): sleigh {sleigh_s:.2f} s,"
        f" Redis {redis_s:.2f} s\n",
        flush=True,
    )
    base = {
        "keys": args.keys,
        "requests": args.requests,
        "socket": str(sleigh_sock),
        "env": str(env_path),
        "seconds": args.seconds,
    }
    m: dict[str, Any] = {
        "direct": run_worker({**base, "kind": "direct"}),
        "raw": run_worker({**base, "kind": "raw"}),
        "reader": run_worker({**base, "kind": "reader"}),
        "decode": run_worker({**base, "kind": "decode"}),
        "socket": run_worker({**base, "kind": "redispy"}),
        "redis": run_worker({**base, "kind": "redispy", "socket": str(redis_sock)}),
        "idle": run_worker({**base, "kind": "hold"}),
    }
    writer = procs.start(
        _worker_argv({**base, "kind": "writer", "rate": WRITE_RATE}),
        _clean_env(),
        "writer",
        notify=False,
    )
    assert writer.stdout is not None
    if not select.select([writer.stdout], [], [], 30)[0] or writer.stdout.readline() != b"go\n":
        raise BenchError("the writer did not start")
    m["loaded"] = run_worker({**base, "kind": "hold"})
    m["writer"] = json.loads(procs.stop(writer).splitlines()[-1])
    servers = {"sleigh": sleigh_sock, "Redis": redis_sock}
    m["rb"] = run_redis_benchmarks(procs, tmp, servers, args)
    return m


def run_redis_benchmarks(
    procs: Processes, tmp: Path, servers: dict[str, Path], args: argparse.Namespace
) -> dict[tuple[str, str, int], Any]:
    rb: dict[tuple[str, str, int], Any] = {}
    for sock in servers.values():  # warm-up, discarded
        redis_benchmark(sock, "get,set", max(1000, args.requests // 10), args.keys, 1)
    for p in (1, 32):
        for name, sock in servers.items():
            for test, fig in redis_benchmark(sock, "get,set", args.requests, args.keys, p).items():
                rb[name, test, p] = fig
    full_sock, _ = start_sleigh(procs, tmp / "sleigh-full", "full")
    for p in (1, 32):
        n = max(1000, args.requests // (4 if p == 1 else 1))
        rb["sleigh sync=full", "SET", p] = redis_benchmark(full_sock, "set", n, args.keys, p)["SET"]
    return rb


def report(m: dict[str, Any]) -> None:
    d, raw, sock, red = m["direct"], m["raw"], m["socket"], m["redis"]
    rows = [
        row_from(
            ROW_DIRECT,
            d,
            f"{d['ops'] / raw['ops']:.2f}x raw lmdb, {d['ops'] / red['ops']:.1f}x Redis/redis-py",
        ),
        row_from(ROW_READER, m["reader"], f"{m['reader']['ns'] / d['ns']:.0%} of direct read time"),
        row_from(ROW_DECODE, m["decode"], f"{m['decode']['ns'] / d['ns']:.0%} of direct read time"),
        row_from(ROW_RAW, raw, "reference (the physical limit)"),
        row_from(ROW_SOCKET, sock, f"{sock['ops'] / red['ops']:.2f}x Redis/redis-py"),
        row_from(ROW_REDIS, red, "reference"),
        *benchmark_rows(m["rb"]),
        row_from(ROW_IDLE, m["idle"], "reference"),
        row_from(
            ROW_LOADED,
            m["loaded"],
            f"p99 {m['loaded']['p99'] / m['idle']['p99']:.2f}x idle;"
            f" writer did {m['writer']['rate']:,.0f} sets/s",
        ),
    ]
    print_table(rows)
    print_targets(m, m["rb"])


def header(args: argparse.Namespace) -> None:
    version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True)
    print(
        f"sleigh-cached benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python "
        f"{platform.python_version()}, py-lmdb {lmdb.__version__}, redis-py {redis.__version__},"
        f" {version.stdout.split(' sha')[0]}"
    )
    print("Figures are comparable ONLY within this one run: a shared, noisy 2-core machine.")
    print(f"condition before: {condition()}")
    print(f"workload: {args.keys:,} keys prod:N, TTL {TTL_S} s, values =")
    print(f"  sleigh msgpack codec of {VALUE_SHAPE}")
    print(f"  GETs: {args.requests:,} per client row, Zipf s={ZIPF_S} (seed {SEED}); each row")
    print("  is one fresh client process; ops/s from the median of 10 untimed chunks of the")
    print("  requests, percentiles from a second pass")
    print("  timing each op (perf_counter_ns); redis-py GET rows return bytes, no decode.")
    print("  raw py-lmdb: `with env.begin(db=data) as txn: txn.get(key)` (copies the value).")
    print(
        f"  redis-benchmark: -c {CLIENTS} -d 1024 -r {args.keys} -n {args.requests} (sync=full"
        f" plain: n/4); writer: {WRITE_RATE:,} SET/s as pipelines of"
        f" {round(WRITE_RATE * WRITE_TICK_S)} every {WRITE_TICK_S * 1000:.0f} ms\n",
        flush=True,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=100_000, help="keys loaded (default 100000)")
    parser.add_argument("--requests", type=int, default=200_000, help="GETs per row, and -n")
    parser.add_argument("--seconds", type=float, default=5.0, help="latency-under-load window")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.keys, args.requests, args.seconds = 2000, 5000, 1.0
    if args.keys < 1000 or args.requests < 1000 or args.seconds <= 0:
        parser.error("--keys and --requests must be >= 1000, --seconds > 0")
    return args


def dump_logs(tmp: Path) -> None:
    """The end of every server's log, on stderr, for a run that failed."""
    for log in sorted(tmp.glob("*.log")):
        tail = log.read_text(errors="replace").splitlines()[-15:]
        print(f"--- {log.name} (last lines)", *tail, sep="\n", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the finally below stops every process started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    header(args)
    start = cpu_clock()
    tmp = Path(tempfile.mkdtemp(prefix="sbench-"))
    procs, done = Processes(tmp), False
    try:
        report(bench_servers(procs, tmp, args))
        done = True
    except BenchError as exc:
        print(f"bench_cache: {exc}", file=sys.stderr)
        return 1
    finally:
        procs.stop_all()
        if not done:
            dump_logs(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{during(start)}")
    print(f"condition after: {condition()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
