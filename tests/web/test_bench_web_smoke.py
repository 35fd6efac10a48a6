"""Smoke run of ``scripts/bench_web.py --quick``: it starts, finishes, prints every row and
target, and leaves no process or file behind. Figures are not checked (timing is not
behaviour); the full run is for people."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plugins.database import admin_connection, postgres_server_url

ROOT = Path(__file__).resolve().parent.parent.parent
BENCH = ROOT / "scripts" / "bench_web.py"
PROFILE = ROOT / "scripts" / "profile_web.py"
ROWS = [
    "product page, warm cache, 2 workers",
    "product page, cold cache, 2 workers",
    "category page with facets, 2 workers",
    "search page, 2 workers",
    "product page, warm, 2 workers, paced",
    "product page, warm cache, 1 worker",
    "product page kept by nginx (front tier)",
    "bare Mako product page, 2 processes",
    "bare Mako product page, 1 process",
    "bare Mako list page, 2 processes",
    "nginx static 20 KB file, 2 workers",
]
TARGETS = [
    "warm product page / bare product page, 2 procs >= 0.7",
    "warm product page, 2 workers >= 4,000 req/s",
    "warm / cold product page >= 5",
    "p99 at 70% of the warm peak < 20 ms",
    "every answer 2xx/3xx, no socket errors",
]


def _missing() -> list[str]:
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    return [name for name, path in (("wrk", shutil.which("wrk")), ("nginx", nginx)) if not path]


def _skip_unless_tools() -> None:
    missing = _missing()
    if not missing:
        return
    reason = f"needs {' and '.join(missing)} (Debian packages wrk, nginx-light)"
    if os.environ.get("SLEIGH_TEST_REQUIRE_BENCH_TOOLS") == "1":
        pytest.fail(f"{reason}; SLEIGH_TEST_REQUIRE_BENCH_TOOLS=1 requires them")
    pytest.skip(reason)


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory for the script's TMPDIR (Unix socket paths are limited)."""
    path = Path(tempfile.mkdtemp(prefix="bw-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _run(
    argv: list[str], tmp: Path, timeout: float, script: Path = BENCH
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.Popen(
        [sys.executable, str(script), *argv],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(tmp)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()  # the script stops what it started on SIGTERM
        out, err = proc.communicate(timeout=60)
        pytest.fail(f"{script.name} {argv} took over {timeout} s:\n{out}\n{err}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.timeout(240)
def test_quick_run_prints_every_row_and_target(short_tmp: Path) -> None:
    _skip_unless_tools()
    done = _run(["--quick"], short_tmp, 180)
    _check_quick_run(done, short_tmp)
    assert "demo products (SQLite)" in done.stdout


@pytest.mark.postgres
@pytest.mark.timeout(240)
def test_quick_run_on_postgresql_drops_its_database(short_tmp: Path) -> None:
    """``--postgres``: the catalog in a database of its own on the server, dropped after."""
    _skip_unless_tools()
    server = postgres_server_url().render_as_string(hide_password=False)
    asyncio.run(_databases())  # skips (or fails, if required) when the server is down
    done = _run(["--quick", "--postgres", server], short_tmp, 180)
    _check_quick_run(done, short_tmp)
    assert "demo products (PostgreSQL at postgresql+asyncpg://" in done.stdout
    made = re.findall(r"database postgresql\+asyncpg://\S+/(sleigh_bench_[0-9a-f]+) ", done.stderr)
    assert made, done.stderr
    assert set(made).isdisjoint(asyncio.run(_databases()))


async def _databases() -> set[str]:
    admin = await admin_connection()
    try:
        return {row[0] for row in await admin.fetch("SELECT datname FROM pg_database")}
    finally:
        await admin.close()


def _check_quick_run(done: subprocess.CompletedProcess[str], tmp: Path) -> None:
    """*done* (a ``--quick`` run in *tmp*) passed, printed every row and target, and
    left nothing in *tmp*."""
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("row "))
    for word in ("req/s", "p50 ms", "p99 ms", "vs bare", "CPU µs"):
        assert word in lines[header]
    labels = [line[:40].rstrip() for line in lines[header + 1 : header + 1 + len(ROWS)]]
    assert labels == [*ROWS]
    verdicts = {line[2:58].rstrip(): line for line in lines if line.startswith("  ")}
    for target in TARGETS:
        assert target in verdicts, f"target {target!r} missing"
        assert verdicts[target].rstrip().endswith(("MET", "NOT MET")), verdicts[target]
    assert "MET" in verdicts["every answer 2xx/3xx, no socket errors"]
    assert "NOT MET" not in verdicts["every answer 2xx/3xx, no socket errors"]
    assert "no id repeated" in done.stdout
    assert "measured in turn" in done.stdout and "  round 1: warm " in done.stdout
    assert "median of 1 in turn" in verdicts[TARGETS[0]]
    assert "comparable ONLY within this one run" in done.stdout
    assert "Traceback" not in done.stderr
    assert list(tmp.iterdir()) == [], "temporary files were left behind"


def test_missing_tools_are_named(tmp_path: Path) -> None:
    """With an empty PATH the script names what to install and exits 2, starting nothing."""
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick"],
        cwd=ROOT,
        env={**os.environ, "PATH": str(tmp_path), "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "missing wrk (Debian package wrk)" in done.stderr
    assert "apt-get install wrk nginx-light" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_help_names_the_options() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    for option in ("--products", "--seconds", "--quick", "--postgres"):
        assert option in done.stdout
    assert "--bare-worker" not in done.stdout


@pytest.mark.timeout(240)
def test_profile_web_prints_the_worker_by_component(short_tmp: Path) -> None:
    _skip_unless_tools()
    py_spy = shutil.which("py-spy") or Path(sys.executable).with_name("py-spy")
    if not Path(py_spy).exists():
        if os.environ.get("SLEIGH_TEST_REQUIRE_BENCH_TOOLS") == "1":
            pytest.fail("needs py-spy (the test extra); SLEIGH_TEST_REQUIRE_BENCH_TOOLS=1")
        pytest.skip("needs py-spy (pip install py-spy)")
    with tempfile.TemporaryDirectory() as kept:
        raw = Path(kept) / "worker.raw"
        done = _run(["--seconds", "2", "--products", "500", "--raw", str(raw)], short_tmp, 180,
                    PROFILE)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        stacks = raw.read_text().splitlines()
    assert stacks and all(re.fullmatch(r".+ \d+", line) for line in stacks)
    assert any("Requests.middleware" in line for line in stacks)
    assert "samples of the worker's event loop thread" in done.stdout
    shares = re.findall(r"^ +([\d.]+)%  (.+)$", done.stdout.split("by component")[1], re.M)
    names = [name for _, name in shares]
    assert "template render" in names and "aiohttp: write the response" in names
    assert "Traceback" not in done.stderr
    assert list(short_tmp.iterdir()) == [], "temporary files were left behind"


def test_a_run_that_one_process_served_alone_is_lopsided() -> None:
    check = """
from web_report import Result, lopsided
def run(**cpu):
    by = {k.replace("_", " "): v for k, v in cpu.items()}
    return Result(1000, 1.0, 1.0, 2.0, 0, 0, cpu_by=by)
assert lopsided(run(python_1=150.0, python_2=0.0))
assert lopsided(run(web_1=290.0, web_2=10.0, sleigh_cache=1.0))
assert not lopsided(run(web_1=160.0, web_2=150.0, sleigh_cache=1.0, sleigh_throttle=11.0))
assert not lopsided(run(python_1=100.0, python_2=60.0))
assert not lopsided(run(nginx=20.0))
"""
    done = subprocess.run(
        [sys.executable, "-c", check], cwd=BENCH.parent, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_a_paced_run_short_of_its_rate_is_not_judged() -> None:
    """The p99 target holds at 70% of the peak: a run paced to 60% cannot meet it."""
    check = """
from web_report import ROW_PACED, ROW_WARM2, Result, targets
def verdict(paced_requests, p99_ms):
    rows = {ROW_WARM2: Result(5000, 1.0, 5.0, 12.0, 0, 0),
            ROW_PACED: Result(paced_requests, 1.0, 3.0, p99_ms, 0, 0)}
    return next(t for t in targets(rows) if t[0].startswith("p99 at 70%"))
name, shown, met = verdict(3000, 14.0)
assert met is False and "(60% of the peak): short of 70%, so no p99 at it" in shown, shown
name, shown, met = verdict(3400, 14.0)
assert met is True and "68% of the peak" in shown, shown
assert verdict(3500, 25.0)[2] is False
from wrk_load import _corrected
assert abs(_corrected(5.0, 4000, 3000) - (5.0 + 8.0 - 32000 / 3000)) < 1e-9  # too slow: less wait
assert _corrected(5.0, 4000, 5000) > 5.0  # too fast: more wait
assert _corrected(1.0, 4000, 1000) == 0.0  # never below none
"""
    done = subprocess.run(
        [sys.executable, "-c", check], cwd=BENCH.parent, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
