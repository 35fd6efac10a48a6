"""Smoke runs of the benchmark scripts: they start, finish and print what they promise."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plugins.database import admin_connection, postgres_server_url

ROOT = Path(__file__).resolve().parent.parent
BENCH_CACHE = ROOT / "scripts" / "bench_cache.py"
CACHE_ROWS = [
    "sleigh direct read (CacheClient.get)",
    "raw py-lmdb get (no decode)",
    "sleigh GET via redis-py",
    "Redis GET via redis-py",
    "redis-benchmark GET sleigh",
    "redis-benchmark GET Redis",
    "redis-benchmark SET sleigh",
    "redis-benchmark SET Redis",
    "redis-benchmark SET sleigh sync=full",
    "redis-benchmark GET sleigh -P 32",
    "redis-benchmark GET Redis -P 32",
    "redis-benchmark SET sleigh -P 32",
    "redis-benchmark SET Redis -P 32",
    "redis-benchmark SET sleigh sync=full -P 32",
    "direct read, no writer",
    "direct read, 10k sets/s writer",
]
TARGETS = [
    "direct read / raw py-lmdb get (ops/s)",
    "direct read / Redis GET via redis-py",
    "redis-benchmark GET sleigh/Redis",
    "redis-benchmark SET sleigh/Redis",
    "redis-benchmark GET -P 32 sleigh/Redis",
    "redis-benchmark SET -P 32 sleigh/Redis",
    "p99 direct read under 10k sets/s",
]


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory (Unix socket paths are limited to 107 bytes), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="bq-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.timeout(150)
@pytest.mark.skipif(
    not (shutil.which("redis-server") and shutil.which("redis-benchmark")),
    reason="needs redis-server and redis-benchmark on PATH",
)
def test_bench_cache_quick_prints_every_row_and_target(short_tmp: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(BENCH_CACHE), "--quick"],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(short_tmp)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.terminate()  # the script stops what it started on SIGTERM
        out, err = proc.communicate(timeout=25)
        pytest.fail(f"bench_cache.py --quick took over 120 s:\n{out}\n{err}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("row "))
    for word in ("ops/s", "ns/op", "p50 µs", "p99 µs", "p99.9 µs", "ratio"):
        assert word in lines[header]
    labels = [line[:46].rstrip() for line in lines[header + 1 : header + 1 + len(CACHE_ROWS) + 2]]
    for row in CACHE_ROWS:
        assert row in labels, f"row {row!r} missing from the table"
    verdicts = {line.split("  ")[1].strip(): line for line in lines if line.startswith("  ")}
    for target in TARGETS:
        assert target in verdicts, f"target {target!r} missing"
        assert " MET" in verdicts[target], verdicts[target]
    assert "comparable ONLY within this one run" in done.stdout
    assert "condition before:" in done.stdout
    assert "Traceback" not in done.stderr
    assert list(short_tmp.iterdir()) == [], "temporary files were left behind"


def test_bench_cache_help_names_the_options() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH_CACHE), "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    for option in ("--keys", "--requests", "--seconds", "--quick"):
        assert option in done.stdout
    assert "--worker" not in done.stdout


@pytest.mark.postgres
@pytest.mark.timeout(180)
def test_bench_reads_quick_prints_every_way_and_drops_its_database() -> None:
    async def databases() -> set[str]:
        admin = await admin_connection()  # skips (or fails, if required) when the server is down
        try:
            return {row[0] for row in await admin.fetch("SELECT datname FROM pg_database")}
        finally:
            await admin.close()

    before = asyncio.run(databases())
    server = postgres_server_url().render_as_string(hide_password=False)
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_reads.py"), "--quick", "--postgres", server],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line[2:32].rstrip(): line for line in done.stdout.splitlines() if line.startswith("  ")}
    for way in (
        "SQLAlchemy engine",
        "engine, ping at every checkout",
        "asyncpg pool, default reset",
        "asyncpg pool, no reset",
        "sleigh read connections",
        "sleigh reader",
    ):
        assert way in rows, done.stdout
    assert rows["sleigh read connections"].rstrip().endswith("1.00")
    assert "PostgreSQL (5 ways" in done.stdout and "SQLite (" in done.stdout
    assert "Traceback" not in done.stderr
    assert asyncio.run(databases()) - before == set()
