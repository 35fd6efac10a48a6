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
import contextlib
import csv
import io
import json
import os
import platform
import random
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lmdb
import redis

from sleigh.daemons.cache.client import CacheClient
from sleigh.daemons.cache.codec import decode, encode
from sleigh.daemons.cache.direct import DirectReader

TTL_S = 3600
SEED = 2000
ZIPF_S = 1.1
WRITE_RATE = 10_000
WRITE_TICK_S = 0.005
CLIENTS = 50
ROW_DIRECT = "sleigh direct read (CacheClient.get)"
ROW_RAW = "raw py-lmdb get (no decode)"
ROW_READER = "  part: DirectReader.get_decoded(k, len)"
ROW_DECODE = "  part: codec.decode of the payload"
ROW_SOCKET = "sleigh GET via redis-py"
ROW_REDIS = "Redis GET via redis-py"
ROW_IDLE = "direct read, no writer"
ROW_LOADED = "direct read, 10k sets/s writer"
#: The fields of one cached product record, in the order they are stored.
FIELDS = (
    "id",
    "sku",
    "slug",
    "title",
    "price_cents",
    "image",
    "brand",
    "description",
    "brand_slug",
    "category_id",
    "age_min",
    "age_max",
)
VALUE_SHAPE = (
    "a whole product record as a list (field names not stored): [id, sku, slug, title"
    " (31-40 chars), price_cents, image, brand, description (880-943 chars), brand_slug,"
    " category_id, age_min, age_max], about 1 KB"
)
_BLURB = (
    "sturdy wooden train set with magnetic couplings and a bright painted finish for"
    " little engineers who love bridges tunnels and stations plus spare track pieces"
    " gift box batteries not included suitable from three years washable fabric"
)
_WORDS = _BLURB.split()
_TEXT = " ".join(random.Random(SEED).choices(_WORDS, k=4000))


class BenchError(Exception):
    """A server did not start, a worker failed, or a tool's output was not understood."""


# -- workload -------------------------------------------------------------------


def key(i: int) -> bytes:
    return b"prod:%d" % i


def part(i: int) -> list[object]:
    """The product part cached under :func:`key` ``(i)``; see ``VALUE_SHAPE``."""
    start = (i * 7919) % (len(_TEXT) - 1000)
    title = f"{_WORDS[i % len(_WORDS)].title()} toy model no. {i:07d}"[:40]
    fields = {
        "id": i,
        "sku": f"TOY{i:07d}",
        "slug": title.lower().replace(" ", "-").replace(".", ""),
        "title": title,
        "price_cents": i % 10_000 + 99,
        "image": f"toy-{i % 24:02d}",
        "brand": "Jolly Toys",
        "description": _TEXT[start : start + 880 + i % 64],
        "brand_slug": "jolly-toys",
        "category_id": i % 250,
        "age_min": i % 8,
        "age_max": 8 + i % 8,
    }
    return [fields[name] for name in FIELDS]


def zipf_ids(keys: int, count: int, seed: int) -> list[int]:
    """*count* key ids drawn with Zipf(s) popularity; ranks map to ids by a seeded shuffle."""
    rng = random.Random(seed)
    cum, total = [], 0.0
    for rank in range(1, keys + 1):
        total += rank**-ZIPF_S
        cum.append(total)
    ids = list(range(keys))
    rng.shuffle(ids)
    return [ids[r] for r in rng.choices(range(keys), cum_weights=cum, k=count)]


# -- measurement, run inside worker processes -----------------------------------


def _pct(ordered: list[int] | array[int], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


def _summary(lat: array[int], ops: float, ns_op: float) -> dict[str, float]:
    ordered = sorted(lat)
    return {
        "ops": ops,
        "ns": ns_op,
        "p50": _pct(ordered, 0.5),
        "p99": _pct(ordered, 0.99),
        "p999": _pct(ordered, 0.999),
    }


def measure(get: Callable[[bytes], object], keys: list[bytes]) -> dict[str, float]:
    """A warm-up, a pass in 10 chunks (ops/s of the median chunk) and a pass timing each
    op (percentiles)."""
    for k in keys[: max(1000, len(keys) // 10)]:
        get(k)
    misses = sum(get(k) is None for k in keys[:1000])
    if misses:
        raise BenchError(f"{misses} of the first 1000 keys missed: the load did not land")
    clock, size, chunks = time.perf_counter_ns, len(keys) // 10, []
    for lo in range(0, size * 10, size):
        t0 = clock()
        for k in keys[lo : lo + size]:
            get(k)
        chunks.append(clock() - t0)
    per_op = sorted(chunks)[len(chunks) // 2] / size  # the median chunk: robust to preemption
    lat = array("q")
    append = lat.append
    for k in keys:
        t = clock()
        get(k)
        append(clock() - t)
    return _summary(lat, 1e9 / per_op, per_op)


def hold(get: Callable[[bytes], object], keys: list[bytes], seconds: float) -> dict[str, float]:
    """Time each op for *seconds*, cycling through *keys*."""
    for k in keys[:1000]:
        get(k)
    clock, lat, i, n = time.perf_counter_ns, array("q"), 0, len(keys)
    t_start = clock()
    end = t_start + int(seconds * 1e9)
    while True:
        t0 = clock()
        get(keys[i])
        t1 = clock()
        lat.append(t1 - t0)
        i = i + 1 if i + 1 < n else 0
        if t1 >= end:
            break
    return _summary(lat, len(lat) * 1e9 / (t1 - t_start), (t1 - t_start) / len(lat))


def _raw_get(env_path: str) -> Callable[[bytes], object]:
    env = lmdb.open(env_path, readonly=True, create=False, lock=True, max_dbs=4)
    data = env.open_db(b"data", create=False)

    def get(k: bytes) -> object:
        with env.begin(db=data) as txn:
            return txn.get(k)

    return get


def _writer(spec: dict[str, Any]) -> dict[str, float]:
    """Pace ``SET`` at ``rate``/s (pipelines of rate x tick) until SIGTERM."""
    stop: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    client = redis.Redis(unix_socket_path=spec["socket"], protocol=2)
    pool = [(key(i), encode(part(i))) for i in zipf_ids(spec["keys"], 2000, SEED + 1)]
    batch, px, sent = round(spec["rate"] * WRITE_TICK_S), TTL_S * 1000, 0
    print("go", flush=True)
    start = due = time.monotonic()
    while not stop:
        pipe = client.pipeline(transaction=False)
        for j in range(sent, sent + batch):
            k, v = pool[j % len(pool)]
            pipe.set(k, v, px=px)
        pipe.execute()
        sent += batch
        due += WRITE_TICK_S
        with contextlib.suppress(InterruptedError):
            time.sleep(max(0.0, due - time.monotonic()))
    client.close()
    return {"sent": sent, "rate": sent / (time.monotonic() - start)}


def worker(spec: dict[str, Any]) -> dict[str, float]:
    """One measurement in this (fresh) process; *spec* says which."""
    kind = spec["kind"]
    if kind == "writer":
        return _writer(spec)
    keys = [key(i) for i in zipf_ids(spec["keys"], spec["requests"], SEED)]
    if kind == "raw":
        return measure(_raw_get(spec["env"]), keys)
    if kind == "redispy":
        client = redis.Redis(unix_socket_path=spec["socket"], protocol=2)
        with contextlib.closing(client):
            return measure(client.get, keys)
    if kind in ("reader", "decode"):
        return _breakdown(kind, Path(spec["env"]), keys)
    with CacheClient(Path(spec["socket"]), Path(spec["env"])) as cache:
        if kind == "direct":
            return measure(cache.get, keys)
        return hold(cache.get, keys, spec["seconds"])


def _breakdown(kind: str, env: Path, keys: list[bytes]) -> dict[str, float]:
    """The direct read in parts: the reader with a trivial decode, or the decode alone."""
    reader = DirectReader(env)
    try:
        if kind == "reader":
            return measure(lambda k: reader.get_decoded(k, len), keys)
        payloads = {k: reader.get(k) or b"" for k in set(keys)}
    finally:
        reader.close()
    return measure(lambda k: decode(payloads[k]), keys)


# -- processes -------------------------------------------------------------------


def _worker_argv(spec: dict[str, Any]) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]


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


# -- machine condition -------------------------------------------------------------


def _cpu_ticks() -> tuple[int, int, int]:
    """All, idle (with iowait) and stolen ticks of every CPU (guest time is inside user)."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    return sum(f), f[3] + f[4], f[7]


def _proc_ticks() -> dict[int, tuple[str, int]]:
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                rest = stat[stat.rindex(")") + 2 :].split()
                out[int(entry.name)] = (
                    stat[stat.index("(") + 1 : stat.rindex(")")],
                    int(rest[11]) + int(rest[12]),
                )
    return out


def condition(interval: float = 1.0) -> str:
    """Cores, load and an *interval*-second sample of what keeps them busy."""
    (total0, idle0, steal0), procs0 = _cpu_ticks(), _proc_ticks()
    time.sleep(interval)
    (total1, idle1, steal1), procs1 = _cpu_ticks(), _proc_ticks()
    cores = os.cpu_count() or 1
    span = max(1, total1 - total0) / cores  # ticks per core in the window
    busy = total1 - total0 - (idle1 - idle0) - (steal1 - steal0)
    used = {
        f"{name}[{pid}]": ticks - procs0.get(pid, (name, 0))[1]
        for pid, (name, ticks) in procs1.items()
    }
    top = sorted(((d, label) for label, d in used.items() if d > 0), reverse=True)[:4]
    who = ", ".join(f"{label} {100 * d / span:.0f}%" for d, label in top) or "none"
    gone = max(0, busy - sum(d for d in used.values() if d > 0))
    stolen = 100 * (steal1 - steal0) / span
    load1, load5, _ = os.getloadavg()
    return (
        f"{cores} cores, load {load1:.2f}/{load5:.2f}; over {interval:.0f} s busy"
        f" {100 * busy / span:.0f}% of {100 * cores}%, stolen {stolen:.0f}%; top: {who};"
        f" processes that ended, or the kernel: {100 * gone / span:.0f}% (% of one core)"
    )


def cpu_clock() -> tuple[float, float, float]:
    """Wall seconds, busy CPU-seconds of the machine, CPU-seconds of this process and its
    reaped children."""
    total, idle, steal = _cpu_ticks()
    t = os.times()
    ours = t.user + t.system + t.children_user + t.children_system
    return time.monotonic(), (total - idle - steal) / os.sysconf("SC_CLK_TCK"), ours


def during(start: tuple[float, float, float]) -> str:
    """What else ran while the benchmark did, from *start* (:func:`cpu_clock`) to now."""
    wall, busy, ours = (b - a for a, b in zip(start, cpu_clock(), strict=True))
    others = max(0.0, busy - ours)
    return (
        f"during the run ({wall:.0f} s wall): this benchmark used {ours:.0f} CPU-s,"
        f" everything else {others:.0f} CPU-s (on average {100 * others / wall:.0f}% of one core)"
    )


# -- report --------------------------------------------------------------------------


@dataclass
class Row:
    label: str
    ops: float
    ns: float | None
    p50: float
    p99: float
    p999: float | None
    ratio: str


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def print_table(rows: list[Row]) -> None:
    print(
        f"{'row':<46} {'ops/s':>10} {'ns/op':>8} {'p50 µs':>9} {'p99 µs':>9} {'p99.9 µs':>9}  ratio"
    )
    for r in rows:
        print(
            f"{r.label:<46} {r.ops:>10,.0f} {_num(r.ns, ',.0f'):>8} {r.p50:>9.1f} "
            f"{r.p99:>9.1f} {_num(r.p999, '.1f'):>9}  {r.ratio}"
        )


def _from(label: str, m: dict[str, float], ratio: str) -> Row:
    return Row(label, m["ops"], m["ns"], m["p50"], m["p99"], m["p999"], ratio)


def _rb_row(label: str, fig: tuple[float, float, float], ratio: str) -> Row:
    return Row(f"redis-benchmark {label}", fig[0], None, fig[1], fig[2], None, ratio)


def _rb_rows(rb: dict[tuple[str, str, int], Any]) -> list[Row]:
    rows = []
    for p in (1, 32):
        mode = "" if p == 1 else " -P 32"
        for test in ("GET", "SET"):
            s, r = rb["sleigh", test, p], rb["Redis", test, p]
            rows.append(_rb_row(f"{test} sleigh{mode}", s, f"{s[0] / r[0]:.2f}x Redis"))
            rows.append(_rb_row(f"{test} Redis{mode}", r, "reference"))
        f, s = rb["sleigh sync=full", "SET", p], rb["sleigh", "SET", p]
        rows.append(_rb_row(f"SET sleigh sync=full{mode}", f, f"{f[0] / s[0]:.2f}x sync=none"))
    return rows


def print_targets(m: dict[str, Any], rb: dict[tuple[str, str, int], Any]) -> None:
    writer = m["writer"]["rate"]
    checks = [
        ("direct read / raw py-lmdb get (ops/s)", m["direct"]["ops"] / m["raw"]["ops"], 0.5, "x"),
        ("direct read / Redis GET via redis-py", m["direct"]["ops"] / m["redis"]["ops"], 20, "x"),
    ]
    for p in (1, 32):
        for test in ("GET", "SET"):
            ratio = rb["sleigh", test, p][0] / rb["Redis", test, p][0]
            checks.append(
                (f"redis-benchmark {test}{' -P 32' if p > 1 else ''} sleigh/Redis", ratio, 0.5, "x")
            )
    print("\ntargets")
    for name, value, floor, unit in checks:
        verdict = "MET" if value >= floor else "NOT MET"
        print(f"  {name:<44} {value:>8.2f}{unit}  >= {floor}{unit}  {verdict}")
    p99 = m["loaded"]["p99"]
    note = "" if writer >= 0.95 * WRITE_RATE else f" (writer reached only {writer:,.0f} sets/s)"
    print(
        f"  {'p99 direct read under 10k sets/s':<44} {p99:>7.1f}µs  < 10µs  "
        f"{'MET' if p99 < 10 and not note else 'NOT MET'}{note}"
    )


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
        _from(
            ROW_DIRECT,
            d,
            f"{d['ops'] / raw['ops']:.2f}x raw lmdb, {d['ops'] / red['ops']:.1f}x Redis/redis-py",
        ),
        _from(ROW_READER, m["reader"], f"{m['reader']['ns'] / d['ns']:.0%} of direct read time"),
        _from(ROW_DECODE, m["decode"], f"{m['decode']['ns'] / d['ns']:.0%} of direct read time"),
        _from(ROW_RAW, raw, "reference (the physical limit)"),
        _from(ROW_SOCKET, sock, f"{sock['ops'] / red['ops']:.2f}x Redis/redis-py"),
        _from(ROW_REDIS, red, "reference"),
        *_rb_rows(m["rb"]),
        _from(ROW_IDLE, m["idle"], "reference"),
        _from(
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
    parser.add_argument("--worker", help=argparse.SUPPRESS)
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
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))), flush=True)
        return 0
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
