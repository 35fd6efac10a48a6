"""The namespace lab's tools for ``bench_replicator.py``: running the writer that paces ``SET``
commands into host A's cache (``replication_writer.py``, a process of its own), the watcher
that polls hosts' LMDB files, and the latency measurement built on both.

Both tools share the machine's cores with the six daemons they measure, so a latency row
also says what they used (CPU µs an object): a machine busy near its cores' worth is
measured queueing, whoever queues."""

from __future__ import annotations

import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import lmdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from webshop import cpu_seconds  # noqa: E402

from tests.replicator.netns import Host, Lab, run  # noqa: E402

#: Bytes of each object written.
SIZE = 1024
#: The writer's program: a process of its own, importing only what it needs.
WRITER = Path(__file__).resolve().parent / "replication_writer.py"


# -- the writer: a subprocess pacing SETs into A's cache ------------------------------------
def run_writer(host: Host, prefix: str, count: int, rate: float) -> tuple[float, float, float]:
    """(wall time of the last ack, seconds the writer took, CPU seconds it used)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [sys.executable, str(WRITER), str(host.cache_socket), prefix, str(count), str(rate),
         str(SIZE)],
        capture_output=True, text=True, check=True, timeout=600,
    ).stdout.split()  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return float(out[0]), float(out[1]), cpu


# -- watching B's LMDB ------------------------------------------------------------------------
class Watcher:
    """Polls hosts' LMDB files for keys written in order."""

    def __init__(self, hosts: list[Host]) -> None:
        self.envs = [
            lmdb.open(str(h.home / "cache"), readonly=True, max_dbs=8, map_size=1 << 30)
            for h in hosts
        ]
        self.dbs = [env.open_db(b"data", create=False) for env in self.envs]

    def latencies(self, prefix: str, count: int, timeout: float) -> list[float]:
        """Seconds from each key's write (stamped in its value) to seen in the first host."""
        env, db = self.envs[0], self.dbs[0]
        out: list[float] = []
        deadline = time.monotonic() + timeout
        i = 0
        while i < count and time.monotonic() < deadline:
            with env.begin(db=db, buffers=True) as txn:
                while i < count:
                    raw = txn.get(b"%s%d" % (prefix.encode(), i))
                    if raw is None:
                        break
                    out.append((time.time_ns() - int(bytes(raw[8:28]))) / 1e9)
                    i += 1
            time.sleep(0.0001)
        return out

    def seen_all(self, key: bytes, timeout: float) -> float | None:
        """Wall time at which every host holds *key* (``None``: not within *timeout*)."""
        deadline = time.monotonic() + timeout
        waiting = set(range(len(self.envs)))
        while waiting and time.monotonic() < deadline:
            for n in list(waiting):
                with self.envs[n].begin(db=self.dbs[n]) as txn:
                    if txn.get(key) is not None:
                        waiting.discard(n)
            time.sleep(0.0005)
        return None if waiting else time.time()

    def close(self) -> None:
        for env in self.envs:
            env.close()


def rcvbuf_errors(host: Host) -> int:
    lines = [x.split() for x in run("cat", "/proc/net/snmp", ns=host.ns).splitlines()]
    udp = [x for x in lines if x and x[0] == "Udp:"]
    return int(dict(zip(udp[0][1:], udp[1][1:], strict=False))["RcvbufErrors"])


def missed(host: Host) -> int:
    peers = cast(list[dict[str, Any]], host.stats().get("peers", []))
    return sum(int(p["missed"]) for p in peers)


# -- the measurements -----------------------------------------------------------------------
@dataclass
class Latency:
    rate: int
    samples: int
    p50_ms: float
    p99_ms: float
    #: CPU time per object, µs, by daemon (``a.cached``, ``b.mcastd``...)
    cpu_us: dict[str, float] = field(default_factory=dict)
    #: CPU time per object, µs, of the measurement itself (``writer``, ``watcher``)
    harness_us: dict[str, float] = field(default_factory=dict)


def measure_latency(
    lab: Lab, watcher: Watcher, rate: int, seconds: float, tag: str = ""
) -> Latency:
    a = lab.hosts["a"]
    count = int(rate * seconds)
    prefix = f"lat{tag}{rate}-"
    result: list[float] = []
    watched: list[float] = []

    def watch() -> None:
        started = time.thread_time()
        result.extend(watcher.latencies(prefix, count, seconds + 30))
        watched.append(time.thread_time() - started)

    thread = threading.Thread(target=watch)
    daemons = {
        f"{name}.{kind}": daemon.pid
        for name, host in lab.hosts.items()
        for kind, daemon in (("cached", host.cached), ("mcastd", host.mcastd))
        if daemon is not None
    }
    before = {name: cpu_seconds([pid]) for name, pid in daemons.items()}
    thread.start()
    _, _, wrote = run_writer(a, prefix, count, rate)
    thread.join()
    cpu = {name: (cpu_seconds([pid]) - before[name]) * 1e6 / count for name, pid in daemons.items()}
    harness = {"writer": wrote * 1e6 / count, "watcher": sum(watched) * 1e6 / count}
    ms = sorted(x * 1000 for x in result)
    if not ms:
        return Latency(rate, 0, float("nan"), float("nan"), cpu, harness)
    p50, p99 = ms[len(ms) // 2], ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return Latency(rate, len(ms), p50, p99, cpu, harness)
