"""``sleigh up`` and ``sleigh status`` end to end: real processes, real HTTP, real signals."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

READY = re.compile(r"sleigh is up: (http://\S+)")


@dataclass
class Shop:
    proc: subprocess.Popen[str]
    address: str
    home: Path
    env: dict[str, str]
    output: list[str]


def _env(home: Path, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("SLEIGH_", "LISTEN_"))}
    keep.pop("NOTIFY_SOCKET", None)
    return {**keep, "SLEIGH_HOME": str(home), "SLEIGH_WEB_PORT": "0", **extra}


def _read_until_up(proc: subprocess.Popen[str], deadline: float) -> tuple[str, list[str]]:
    assert proc.stdout is not None
    lines: list[str] = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            match = READY.search(line)
            if match:
                return match.group(1), lines
        elif proc.poll() is not None:
            break
    raise AssertionError(f"sleigh up did not come up: {''.join(lines)}")


def _sleigh(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sleigh.daemons.control", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    home = tmp_path / "home"
    env = _env(home)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sleigh.daemons.control", "up", "--products", "600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        address, lines = _read_until_up(proc, time.monotonic() + 90)
        yield Shop(proc, address, home, env, lines)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_up_serves_the_shop_and_stops_cleanly(shop: Shop) -> None:
    status, home = _get(shop.address)
    assert status == 200
    assert "Popular right now" in home
    category = re.search(r'href="(/c/[a-z0-9/-]+)"', home)
    product = re.search(r'href="(/p/\d+/[a-z0-9-]+)"', home)
    assert category is not None and product is not None
    assert _get(shop.address.rstrip("/") + category.group(1))[0] == 200
    assert _get(shop.address.rstrip("/") + product.group(1))[0] == 200

    report = _sleigh("status", "--json", env=shop.env)
    assert report.returncode == 0, report.stdout + report.stderr
    data = json.loads(report.stdout)
    assert data["ok"] is True
    assert data["components"]["database"]["details"]["products"] == 600
    workers = data["components"]["web"]["details"]["workers"]
    assert len(workers) == 2 and all(_alive(pid) for pid in workers)

    shop.proc.send_signal(signal.SIGINT)
    assert shop.proc.wait(30) == 0
    assert shop.proc.stderr is not None
    assert "Traceback" not in shop.proc.stderr.read()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), "web workers outlived sleigh up"
    assert not (shop.home / "run" / "up.json").exists()

    down = _sleigh("status", env=shop.env)
    assert down.returncode == 1
    assert re.search(r"^web\s+down", down.stdout, re.MULTILINE)


@pytest.mark.slow
def test_up_restarts_a_worker_that_dies(shop: Shop) -> None:
    state = json.loads((shop.home / "run" / "up.json").read_text())
    victim = state["web"]["workers"][0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        report = json.loads(_sleigh("status", "--json", env=shop.env).stdout)
        if report["ok"]:
            break
        time.sleep(0.5)
    assert _get(shop.address)[0] == 200
    shop.proc.send_signal(signal.SIGTERM)
    assert shop.proc.wait(30) == 0
    assert shop.proc.stderr is not None
    assert "exited unexpectedly" in shop.proc.stderr.read()


def test_up_refuses_a_port_in_use(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = _env(tmp_path / "home", SLEIGH_WEB_PORT=str(port))
        result = subprocess.run(
            [sys.executable, "-m", "sleigh.daemons.control", "up", "--products", "0"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
    assert result.returncode == 1
    assert "address already in use" in result.stderr.lower()
    assert "Traceback" not in result.stderr
