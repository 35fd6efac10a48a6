"""``scripts/bench_throttle.py --quick`` runs and prints every row and the targets block."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
ROWS = [
    "sleigh-throttled, 1 blocking client",
    f"sleigh-throttled, {max(2, os.cpu_count() or 2)} blocking clients",
    "sleigh-throttled, 1 asyncio client, 64 in flight",
    "minimal uvloop GCRA server (floor), 1 client",
    "limits + Redis (fixed window)",
    "limits + Redis (moving window)",
    "GCRA Lua script in Redis (EVALSHA)",
    "in-process GCRA (Table.check)",
    "replay of 50,000 records",
    "middleware, asking the daemon",
    "middleware, in-process fallback (no round trip)",
    "floor: one write and one read per request, handler answers 'ok'",
    "floor: one write and one read per request, handler renders the page",
    "round trips to the minimal server, one blocking client, after its core idled",
    "after 1,000 us idle",
    "end to end, at the client",
    "inside the server",
    "targets",
    "daemon CPU <= 5 us/decision",
    "replay of the log <= 1 s",
    "middleware added latency p99 <= 100 us",
    "the floor here and now",
]


def _redis_up() -> bool:
    import redis

    try:
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.mark.skipif(not _redis_up(), reason="needs Redis on 127.0.0.1:6379")
def test_quick_run_prints_every_row() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLEIGH_")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_throttle.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    for row in ROWS:
        assert row in result.stdout, result.stdout
