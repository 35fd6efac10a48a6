"""Smoke run of ``scripts/bench_metrics.py``: it runs and prints every row (figures unchecked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
BENCH = ROOT / "scripts" / "bench_metrics.py"
ROWS = [
    "handler alone",
    "metrics middleware",
    "navigation middleware",
    "metrics + navigation",
    "prometheus_client children",
]


@pytest.mark.timeout(120)
def test_bench_metrics_prints_every_row() -> None:
    argv = [sys.executable, str(BENCH), "--count", "200", "--repeat", "1"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=100, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for row in ROWS:
        assert any(line.startswith(row) for line in lines), (row, done.stdout)


def test_bench_metrics_refuses_a_bad_count() -> None:
    argv = [sys.executable, str(BENCH), "--count", "0"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "--count and --repeat must be at least 1" in done.stderr
