"""What ``bench_throttle.py`` measures besides the comparisons: the daemons it runs
(``sleigh-throttled`` on a private home, and the floor, a minimal uvloop GCRA server
answering the same frames) and the 5,000,000-record log it replays."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from sleigh.daemons.throttle.client import ThrottleClient
from sleigh.daemons.throttle.gcra import key_hash
from sleigh.daemons.throttle.logfile import DTYPE, HEADER, MAGIC, RECORD, VERSION, open_log
from sleigh.daemons.throttle.rules import make_rule, rules_hash

SEED = 2000
#: The rule of every row: 100 a second, bursts of 200 (as :data:`RULES_TOML` says).
RULE = make_rule("ip", 100, 1.0, 200)

RULES_TOML = (
    '[rules.ip]\nrate = 100\nper = "1s"\nburst = 200\n'
    '[rules.cpu]\nrate = 70000\nper = "1s"\nburst = 1050000\n'
)


#: The floor on this machine at this moment: a minimal uvloop server answering one-key CHECKs
#: with a dict of GCRA timestamps (no log, no validation, no counters), same frames and client.
MINIMAL_SERVER = """
import asyncio, struct, sys, time, uvloop
HEAD, REPLY = struct.Struct("<IBIBB"), struct.Struct("<IBIBBIQ")
INTERVAL, TOLERANCE = 10_000_000, 2_000_000_000
tats = {}
class P(asyncio.Protocol):
    def connection_made(self, t): self.t = t
    def data_received(self, data):
        now, out, pos = time.time_ns(), [], 0
        while pos < len(data):
            length, op, rid, n, klen = HEAD.unpack_from(data, pos)
            key = data[pos + 11:pos + 11 + klen]
            new = max(tats.get(key, 0), now) + INTERVAL
            if new - now > TOLERANCE:
                out.append(REPLY.pack(19, 0, rid, 0, 0, 0, new - TOLERANCE - now))
            else:
                tats[key] = new
                out.append(REPLY.pack(19, 0, rid, 1, 255, 0, 0))
            pos += 4 + length
        self.t.write(b"".join(out))
async def main():
    server = await asyncio.get_running_loop().create_unix_server(P, sys.argv[1])
    await asyncio.Event().wait()
uvloop.run(main())
"""


class Daemon:
    """A private sleigh-throttled on a temporary home (or, *minimal*, the floor server)."""

    def __init__(self, home: Path, minimal: bool = False) -> None:
        (home / "rules.toml").write_text(RULES_TOML)
        self.socket = home / "t.sock"
        env = {
            **os.environ,
            "SLEIGH_CONFIG": "",
            "SLEIGH_THROTTLE_RULES": str(home / "rules.toml"),
            "SLEIGH_THROTTLE_SOCKET": str(self.socket),
            "SLEIGH_LOGGING_LEVEL": "warning",
        }
        argv = [sys.executable, "-m", "sleigh.daemons.throttle", "--home", str(home)]
        if minimal:
            self.socket = home / "m.sock"
            argv = [sys.executable, "-c", MINIMAL_SERVER, str(self.socket)]
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with ThrottleClient([self.socket], timeout=1) as client:
                    client.check([b"ip:warmup"])  # both servers answer a CHECK
                    return
            except Exception:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("sleigh-throttled did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def make_log(path: Path, records: int, n_keys: int) -> None:
    """A log of *records* records over *n_keys* keys, written over the last minute."""
    rng = np.random.default_rng(SEED)
    now = time.time_ns()
    arr = np.zeros(records, dtype=DTYPE)
    idx = rng.integers(0, n_keys, records)
    names = [f"ip:10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}".encode() for i in range(n_keys)]
    hashes = np.array([key_hash(k) for k in names], dtype=np.uint64)
    keys = np.array(names, dtype="S48")
    lens = np.array([len(k) for k in names], dtype=np.uint8)
    arr["now"] = now - 60 * 10**9 + np.sort(rng.integers(0, 60 * 10**9, records))
    arr["tat"] = arr["now"] + rng.integers(0, 90 * 10**9, records)  # many still alive
    arr["hash"], arr["key"], arr["klen"] = hashes[idx], keys[idx], lens[idx]
    arr["event"], arr["cost"] = 1, 1
    with path.open("wb") as fh:
        fh.write(HEADER.pack(MAGIC, VERSION, RECORD.size, 0, rules_hash({"ip": RULE}), now))
        arr.tofile(fh)


def replay(records: int, n_keys: int, tmp: Path) -> tuple[float, float, int]:
    """Seconds to replay, seconds to replay and compact, live keys."""
    from sleigh.daemons.throttle.logfile import live_states

    path = tmp / "replay.log"
    make_log(path, records, n_keys)
    started = time.perf_counter()
    states = live_states(path, time.time_ns())
    replayed = time.perf_counter() - started
    started = time.perf_counter()
    open_log(path, rules_hash({"ip": RULE}))
    total = time.perf_counter() - started
    return replayed, total, len(states)
