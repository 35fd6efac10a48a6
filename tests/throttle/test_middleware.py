"""The middleware end to end: a real ``sleigh-web`` asking a real ``sleigh-throttled``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sleigh.daemons.runtime.sockets import UnixHTTPConnection
from sleigh.daemons.throttle.client import ThrottleClient
from tests.plugins.daemons import Daemon, DaemonFactory
from tests.throttle.conftest import RULES, write_rules


def get(
    path: Path, url: str, ip: str, accept: str = "text/html"
) -> tuple[int, dict[str, str], str]:
    conn = UnixHTTPConnection(path)
    try:
        conn.request("GET", url, headers={"X-Real-IP": ip, "Accept": accept})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("throttle-home")
    control = [sys.executable, "-m", "sleigh.daemons.control", "--home", str(home)]
    result = subprocess.run(
        [*control, "demo", "load", "--products", "50"],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("SLEIGH_")},
    )
    assert result.returncode == 0, result.stderr
    write_rules(home, RULES)
    return home


def start_shop(
    daemon_factory: DaemonFactory, home: Path, web_env: dict[str, str]
) -> tuple[Daemon, Daemon]:
    """A ``sleigh-throttled`` and a ``sleigh-web`` asking it (with *web_env* too)."""
    rules = {"SLEIGH_THROTTLE_RULES": str(home / "rules.toml")}
    throttled = daemon_factory.start(
        [sys.executable, "-m", "sleigh.daemons.throttle", "--home", str(home)], env=rules
    )
    assert isinstance(throttled.address, Path)
    web = daemon_factory.start(
        [sys.executable, "-m", "sleigh.webapp", "--home", str(home)],
        env={
            **rules,
            "SLEIGH_THROTTLE_SERVERS": f"unix:{throttled.address}",
            "SLEIGH_THROTTLE_CLIENT_IP_HEADER": "X-Real-IP",
            **web_env,
        },
    )
    assert isinstance(web.address, Path)
    return throttled, web


def test_burst_429_then_fail_open_and_closed(daemon_factory: DaemonFactory, home: Path) -> None:
    throttled, web = start_shop(
        daemon_factory,
        home,
        {
            "SLEIGH_THROTTLE_TIMEOUT": "2s",  # a loaded test box; production uses a few ms
            "SLEIGH_THROTTLE_CPU_FLUSH": "1ms",
        },
    )
    assert isinstance(throttled.address, Path) and isinstance(web.address, Path)

    # a burst: five pages, then 429 with the exact wait (ip: 5 a minute, burst 5)
    for _ in range(5):
        assert get(web.address, "/", "10.0.0.1")[0] == 200
    status, headers, page = get(web.address, "/", "10.0.0.1")
    assert status == 429 and headers["Retry-After"] == "12" and "slow down" in page
    with ThrottleClient([throttled.address], timeout=5) as client:
        wait = client.show(b"ip:10.0.0.1")["retry_after_ns"] / 1e9
        assert 11 < wait <= 12
        assert client.show(b"cpu:10.0.0.1")["known"]  # CPU time was charged
    status, headers, body = get(web.address, "/", "10.0.0.1", accept="application/json")
    assert status == 429 and json.loads(body)["retry_after"] == int(headers["Retry-After"])
    assert get(web.address, "/healthz", "10.0.0.1")[0] == 200  # exempt
    assert get(web.address, "/", "10.0.0.9")[0] == 200  # another address is not limited

    # the daemon stopped: browsing still works (in-process limits), sign-in refuses
    assert throttled.stop() == 0
    assert get(web.address, "/", "10.0.0.2")[0] == 200
    assert get(web.address, "/account/signin", "10.0.0.3")[0] == 503
    assert get(web.address, "/account/reset", "10.0.0.3")[0] == 503
    statuses = [get(web.address, "/", "10.0.0.4")[0] for _ in range(6)]
    assert statuses == [200] * 5 + [429]  # the fallback still limits
    assert "THROTTLE DAEMON UNAVAILABLE" in web.stderr_text()
    _, _, metrics = get(web.address, "/metrics", "10.0.0.5")
    assert 'sleigh_throttle_decisions_total{result="denied",source="daemon"} 1.0' in metrics
    assert "sleigh_throttle_fail_open_total" in metrics
    fail_open = next(
        line for line in metrics.splitlines() if line.startswith("sleigh_throttle_fail_open_total")
    )
    assert float(fail_open.split()[-1]) >= 7


def test_sign_in_asks_the_daemon_while_browsing_falls_back(
    daemon_factory: DaemonFactory, home: Path
) -> None:
    throttled, web = start_shop(
        daemon_factory,
        home,
        {
            # browsing's wait is too short for any reply: it always uses the fallback
            "SLEIGH_THROTTLE_TIMEOUT": "0.1ms",
            "SLEIGH_THROTTLE_CLOSED_TIMEOUT": "5s",
        },
    )
    assert isinstance(throttled.address, Path) and isinstance(web.address, Path)
    assert get(web.address, "/", "10.1.0.1")[0] == 200
    assert "THROTTLE DAEMON UNAVAILABLE" in web.stderr_text()
    # sign-in is not refused: it asked the daemon, which counted it
    assert get(web.address, "/account/signin", "10.1.0.2")[0] == 200
    with ThrottleClient([throttled.address], timeout=5) as client:
        assert client.show(b"login:10.1.0.2")["known"]
        assert not client.show(b"ip:10.1.0.1")["known"]  # browsing never reached it
    assert throttled.stop() == 0
    # with the daemon gone, sign-in refuses, browsing goes on
    assert get(web.address, "/account/signin", "10.1.0.2")[0] == 503
    assert get(web.address, "/", "10.1.0.1")[0] == 200
