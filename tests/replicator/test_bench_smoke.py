"""Smoke run of ``scripts/bench_replicator.py --quick``: it starts, finishes and prints
every row and target it promises (root only: it makes network namespaces)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.replicator.netns import netns_required

ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = netns_required()


@pytest.mark.timeout(120)
def test_quick_run_prints_every_figure() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_replicator.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=110,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for heading in ("receive path", "latency: SET on A", "throughput:", "recovery after",
                    "the same burst with no loss"):  # fmt: skip
        assert heading in out, out
    for row in ("blocking recv thread", "asyncio endpoint (uvloop)", "highest clean rate",
                "CPU µs an object at 10000/s: a.cached ", "A's own: p50, p99 ms",
                "and the measurement's own: writer "):  # fmt: skip
        assert row in out, out
    targets = out.split("\ntargets\n", 1)[1].split("\n\n", 1)[0]
    assert targets.count("target") == 3 and "Traceback" not in result.stderr, out
    hogged = out.split("both cores kept busy by two processes", 1)[1].splitlines()
    assert [line.split()[-4] for line in hogged[2:4]] == ["(-5)", "0"], out
    paths = out.split("the daemons on each receive path", 1)[1].splitlines()
    assert [line.split()[:2] for line in paths[2:4]] == [["thread", "1"], ["reader", "1"]], out
