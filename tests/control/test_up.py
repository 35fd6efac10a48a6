"""``sleigh up`` and ``sleigh status`` end to end: real processes, real HTTP, real signals."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sleigh.daemons.control.cache_cmd import NICE as CACHE_NICE
from sleigh.daemons.control.replication_cmd import NICE as REPLICATION_NICE
from sleigh.daemons.control.throttle_cmd import NICE
from tests.plugins.up import UpShop, alive, get_page, running_shop, shop_env, stop_shop


def _sleigh(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sleigh.daemons.control", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[UpShop]:
    with running_shop(tmp_path / "home", products=600) as shop:
        yield shop


@pytest.mark.slow
def test_up_serves_the_shop_and_stops_cleanly(shop: UpShop) -> None:
    status, _, home = get_page(shop.address)
    assert status == 200
    assert "Popular right now" in home
    category = re.search(r'href="(/c/[a-z0-9/-]+)"', home)
    product = re.search(r'href="(/p/\d+/[a-z0-9-]+)"', home)
    assert category is not None and product is not None
    assert get_page(shop.address.rstrip("/") + category.group(1))[0] == 200
    assert get_page(shop.address.rstrip("/") + product.group(1))[0] == 200

    report = _sleigh("status", "--json", env=shop.env)
    assert report.returncode == 0, report.stdout + report.stderr
    data = json.loads(report.stdout)
    assert data["ok"] is True
    assert data["components"]["database"]["details"]["products"] == 600
    workers = data["components"]["web"]["details"]["workers"]
    assert len(workers) == 2 and all(alive(pid) for pid in workers)
    # the throttle daemon runs at its unit's niceness where that is allowed (root: CI)
    state = json.loads((shop.home / "run" / "up.json").read_text())
    throttled = os.getpriority(os.PRIO_PROCESS, state["daemons"]["throttled"])
    assert throttled == (NICE if os.geteuid() == 0 else 0)
    for name, unit_nice in (("cached", CACHE_NICE), ("mcastd", REPLICATION_NICE)):
        nice = os.getpriority(os.PRIO_PROCESS, state["daemons"][name])
        assert nice == (unit_nice if os.geteuid() == 0 else 0), name
    assert os.getpriority(os.PRIO_PROCESS, workers[0]) == 0

    stop_shop(shop, signal.SIGINT)
    assert all(pid in shop.children for pid in workers)

    down = _sleigh("status", env=shop.env)
    assert down.returncode == 1
    assert re.search(r"^web\s+down", down.stdout, re.MULTILINE)


@pytest.mark.slow
def test_up_restarts_a_worker_that_dies(shop: UpShop) -> None:
    victim = shop.workers()[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        report = json.loads(_sleigh("status", "--json", env=shop.env).stdout)
        if report["ok"]:
            break
        time.sleep(0.5)
    assert get_page(shop.address)[0] == 200
    stop_shop(shop)
    assert "exited unexpectedly" in shop.log()


def test_up_refuses_a_port_in_use(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = shop_env(tmp_path / "home", SLEIGH_WEB_PORT=str(port))
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
