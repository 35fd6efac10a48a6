"""Measure ``sleigh-throttled`` against ``limits`` + Redis, a GCRA Lua script and in-process GCRA.

Workload: ``--keys`` client addresses (``ip:10.x.y.z``) picked by Zipf
popularity (s=1.1, fixed seed); one rule ``ip``: 100 a second, bursts of
200 (the heavy hitters get denials, the tail does not). Rows, each run for
``--requests`` decisions:

1. sleigh-throttled, one blocking client (one round trip per decision);
2. sleigh-throttled, as many blocking client processes as cores;
3. sleigh-throttled, one asyncio client with 64 requests in flight;
4. ``limits`` (fixed window, and moving window) with its Redis storage, 127.0.0.1:6379;
5. a GCRA Lua script in the same Redis (EVALSHA, as redis-cell does);
6. in-process GCRA (``Table.check``: the ceiling).

Also: the daemon's CPU per decision (utime+stime from /proc/PID/stat, per
row), replay of a 5,000,000-record log (``--records``), and the
middleware's added latency per HTTP request (how: :mod:`middleware_latency`),
beside the floor's: a middleware that only writes one question and reads one
answer per request, to the same daemon, in the same run.

Run: ``.venv/bin/python scripts/bench_throttle.py [--quick]``
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from middleware_latency import (
    Overhead,
    idle_round_trips,
    middleware_overhead,
    print_middleware,
)
from throttle_lab import RULE, SEED, Daemon, replay
from webshop import cpu_seconds

from sleigh.daemons.throttle.client import AsyncThrottleClient, ThrottleClient
from sleigh.daemons.throttle.gcra import Table
from sleigh.daemons.throttle.rules import make_rule

ZIPF_S = 1.1
CPU_RULE = make_rule("cpu", 70_000, 1.0, 1_050_000)
#: The rules the middleware's apps enforce (those of :data:`throttle_lab.RULES_TOML`).
HTTP_RULES = {"ip": RULE, "cpu": CPU_RULE}
#: Idle gaps (microseconds) before the round trips that show what waking a core costs.
IDLE_GAPS_US = [0, 100, 200, 400, 1000]
IN_FLIGHT = 64
LUA_GCRA = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new = tat + cost * interval
if new - now > tolerance then return {0, new - tolerance - now} end
redis.call('SET', KEYS[1], new, 'PX', math.ceil((new - now) / 1000000) + 1)
return {1, 0}
"""


@dataclass
class Row:
    name: str
    decisions: int
    seconds: float
    latencies: np.ndarray | None = None
    cpu_us: float | None = None

    @property
    def rate(self) -> float:
        return self.decisions / self.seconds

    def pct(self, q: float) -> float | None:
        if self.latencies is None or not len(self.latencies):
            return None
        return float(np.percentile(self.latencies, q)) * 1e6


def zipf_keys(n_keys: int, count: int, seed: int = SEED) -> list[bytes]:
    """*count* keys out of *n_keys*, by Zipf popularity."""
    weights = 1.0 / np.arange(1, n_keys + 1) ** ZIPF_S
    cdf = np.cumsum(weights) / weights.sum()
    picks = np.searchsorted(cdf, np.random.default_rng(seed).random(count))
    return [f"ip:10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}".encode() for i in picks.tolist()]


def timed_loop(call: Callable[[bytes], object], keys: Sequence[bytes]) -> tuple[float, np.ndarray]:
    lat = np.empty(len(keys))
    clock = time.perf_counter
    started = clock()
    for i, key in enumerate(keys):
        t0 = clock()
        call(key)
        lat[i] = clock() - t0
    return clock() - started, lat


def sync_worker(path: str, keys: list[bytes], out: multiprocessing.Queue[object]) -> None:
    with ThrottleClient([Path(path)], timeout=5) as client:
        seconds, lat = timed_loop(lambda k: client.check([k]), keys)
    out.put((seconds, lat))


def row_sync(daemon: Daemon, keys: list[bytes], clients: int, name: str = "") -> Row:
    ctx = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[object] = ctx.Queue()
    cpu0 = cpu_seconds([daemon.proc.pid])
    started = time.perf_counter()
    procs = [
        ctx.Process(target=sync_worker, args=(str(daemon.socket), keys[i::clients], queue))
        for i in range(clients)
    ]
    for proc in procs:
        proc.start()
    results = [queue.get() for _ in procs]
    for proc in procs:
        proc.join()
    wall = time.perf_counter() - started
    lat = np.concatenate([r[1] for r in results])  # type: ignore[index]
    cpu = cpu_seconds([daemon.proc.pid]) - cpu0
    name = name or f"sleigh-throttled, {clients} blocking client{'s' if clients > 1 else ''}"
    return Row(name, len(keys), wall, lat, cpu / len(keys) * 1e6)


async def _pipelined(path: Path, keys: list[bytes]) -> tuple[float, np.ndarray]:
    client = AsyncThrottleClient([path], timeout=5)
    lat = np.empty(len(keys))
    clock = time.perf_counter
    queue = iter(range(len(keys)))

    async def worker() -> None:
        for i in queue:
            t0 = clock()
            await client.check([keys[i]])
            lat[i] = clock() - t0

    await client.check([keys[0]])
    started = clock()
    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    seconds = clock() - started
    await client.aclose()
    return seconds, lat


def row_async(daemon: Daemon, keys: list[bytes]) -> Row:
    import uvloop

    cpu0 = cpu_seconds([daemon.proc.pid])
    seconds, lat = uvloop.run(_pipelined(daemon.socket, keys))
    cpu = cpu_seconds([daemon.proc.pid]) - cpu0
    name = f"sleigh-throttled, 1 asyncio client, {IN_FLIGHT} in flight"
    return Row(name, len(keys), seconds, lat, cpu / len(keys) * 1e6)


def rows_limits(keys: list[bytes]) -> list[Row]:
    from limits import RateLimitItemPerSecond, storage, strategies

    store = storage.storage_from_string("redis://127.0.0.1:6379/15")
    item = RateLimitItemPerSecond(100)
    rows = []
    for name, cls in (
        ("fixed window", strategies.FixedWindowRateLimiter),
        ("moving window", strategies.MovingWindowRateLimiter),
    ):
        store.reset()
        limiter = cls(store)

        def hit(key: bytes, limiter: strategies.RateLimiter = limiter) -> bool:
            return bool(limiter.hit(item, key.decode()))

        seconds, lat = timed_loop(hit, keys)
        rows.append(Row(f"limits + Redis ({name})", len(keys), seconds, lat))
    store.reset()
    return rows


def row_lua(keys: list[bytes]) -> Row:
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=15)
    client.flushdb()
    sha = client.script_load(LUA_GCRA)
    interval, tolerance = str(RULE.interval), str(RULE.tolerance)

    def call(key: bytes) -> object:
        return client.evalsha(sha, 1, key, str(time.time_ns()), interval, tolerance, "1")

    seconds, lat = timed_loop(call, keys)
    client.flushdb()
    client.close()
    return Row("GCRA Lua script in Redis (EVALSHA)", len(keys), seconds, lat)


def row_inprocess(keys: list[bytes]) -> Row:
    table = Table({"ip": RULE})
    seconds, lat = timed_loop(lambda k: table.check([k], [1], time.time_ns()), keys)
    return Row("in-process GCRA (Table.check)", len(keys), seconds, lat)


def _fmt(value: float | None, spec: str = ",.1f") -> str:
    return "-" if value is None else format(value, spec)


def print_rows(rows: list[Row], base: Row) -> None:
    print(
        f"{'row':50} {'decisions/s':>12} {'p50 us':>8} {'p99 us':>8}"
        f" {'daemon CPU us':>13} {'x base':>7}"
    )
    for row in rows:
        print(
            f"{row.name:50} {row.rate:>12,.0f} {_fmt(row.pct(50)):>8} {_fmt(row.pct(99)):>8}"
            f" {_fmt(row.cpu_us, '.2f'):>13} {row.rate / base.rate:>7.2f}"
        )


def targets(
    rows: list[Row],
    base: Row,
    replayed: float,
    added: dict[str, float],
    floors: dict[str, float],
) -> None:
    """*added*: p99 latency the middleware adds to a GET that renders a page (``page``) and to
    one that answers ``ok``; *floors*: the same for the floor's middleware."""
    sync1, pipelined = rows[0], rows[2]
    best_cpu = min(r.cpu_us for r in rows[:3] if r.cpu_us is not None)
    floor = rows[3].cpu_us
    checks = [
        (
            f"daemon CPU <= 5 us/decision (best row {best_cpu:.2f}; 1 blocking client"
            f" {sync1.cpu_us:.2f}; the minimal server's floor here and now {floor:.2f})",
            best_cpu <= 5.0,
        ),
        (
            f">= 3x {base.name} decisions/s (1 blocking client {sync1.rate / base.rate:.2f}x;"
            f" pipelined {pipelined.rate / base.rate:.2f}x)",
            max(sync1.rate, pipelined.rate) >= 3 * base.rate,
        ),
        (f"replay of the log <= 1 s ({replayed:.3f} s)", replayed <= 1.0),
        (
            f"middleware added latency p99 <= 100 us, a GET that renders a page"
            f" ({added['page']:.1f} us: p99 with minus p99 without, end to end;"
            f" the floor here and now {floors['page']:.1f})",
            added["page"] <= 100.0,
        ),
        (
            f"middleware added latency p99 <= 100 us, a GET that answers 'ok'"
            f" ({added['ok']:.1f} us: no work for the round trip to hide behind;"
            f" the floor {floors['ok']:.1f})",
            added["ok"] <= 100.0,
        ),
    ]
    print("\ntargets")
    for text, met in checks:
        print(f"  {'met    ' if met else 'NOT met'}  {text}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--records", type=int, default=5_000_000)
    parser.add_argument("--http", type=int, default=5_000, help="HTTP requests for the middleware")
    parser.add_argument("--quick", action="store_true", help="a smoke run: small numbers")
    args = parser.parse_args(argv)
    if args.quick:
        args.keys, args.requests, args.records, args.http = 1000, 2000, 50_000, 300
    keys = zipf_keys(args.keys, args.requests)
    clients = max(2, os.cpu_count() or 2)
    print(
        f"# {args.requests:,} decisions over {args.keys:,} Zipf keys (s={ZIPF_S}); {clients} cores"
    )
    with tempfile.TemporaryDirectory(prefix="bt-", dir="/tmp") as tmp:
        rows, http = measure_daemon(Path(tmp), keys, clients, args.http)
        floor_row, idle = measure_floor(Path(tmp), keys, 300 if args.quick else 2000)
        rows.append(floor_row)
        rows += rows_limits(keys)
        rows += [row_lua(keys), row_inprocess(keys)]
        base = max(rows[4:6], key=lambda r: r.rate)
        print_rows(rows, base)
        replayed, compacted, live = replay(args.records, args.keys, Path(tmp))
    print(
        f"\nreplay of {args.records:,} records: {replayed:.3f} s ({live:,} live keys);"
        f" with compaction to a fresh log: {compacted:.3f} s"
    )
    http["fallback"] = middleware_overhead(None, keys[: args.http], HTTP_RULES)
    print_middleware(http, idle)
    added = {name: http[name].added(99) for name in ("page", "ok")}
    floors = {"page": http["floor page"].added(99), "ok": http["floor ok"].added(99)}
    targets(rows, base, replayed, added, floors)
    return 0


def measure_daemon(
    tmp: Path, keys: list[bytes], clients: int, http: int
) -> tuple[list[Row], dict[str, Overhead]]:
    """sleigh-throttled's rows (1 and *clients* blocking clients, one pipelined), and
    the middleware's latency with it (``ok``, ``page``) beside the floor's
    (``floor ok``, ``floor page``) over the first *http* keys."""
    daemon = Daemon(tmp)
    try:
        rows = [row_sync(daemon, keys, 1), row_sync(daemon, keys, clients), row_async(daemon, keys)]
        asked = keys[:http]
        got = {
            f"{'floor ' if floor else ''}{'page' if page else 'ok'}": middleware_overhead(
                daemon.socket, asked, HTTP_RULES, page, floor
            )
            for floor in (False, True)
            for page in (False, True)
        }
    finally:
        daemon.stop()
    return rows, got


def measure_floor(
    tmp: Path, keys: list[bytes], count: int
) -> tuple[Row, list[tuple[int, np.ndarray]]]:
    """The minimal server's row, and *count* idle round trips to it per gap."""
    floor = Daemon(tmp, minimal=True)
    try:
        row = row_sync(floor, keys, 1, "minimal uvloop GCRA server (floor), 1 client")
        return row, idle_round_trips(floor.socket, IDLE_GAPS_US, count)
    finally:
        floor.stop()


if __name__ == "__main__":
    raise SystemExit(main())
