"""Fixtures: a real ``sleigh-throttled`` on a fresh home, with a rules file of the test's."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from sleigh.daemons.throttle.client import ThrottleClient
from tests.plugins.daemons import Daemon, DaemonFactory

#: Small limits a test can reach quickly; long periods, so nothing expires during a test.
RULES = """
[rules.ip]
rate = 5
per = "1m"
burst = 5

[rules.session]
rate = 3
per = "1m"
burst = 3

[rules.login]
rate = 2
per = "1m"
burst = 2
penalty_strikes = 3
penalty_window = "1m"
penalty_for = "10m"

[rules.cpu]
rate = 1000000
per = "1m"
burst = 1000000
"""


@dataclass
class Throttled:
    daemon: Daemon
    home: Path

    @property
    def socket_path(self) -> Path:
        assert isinstance(self.daemon.address, Path)
        return self.daemon.address

    @property
    def log_path(self) -> Path:
        return self.home / "throttle" / "state.log"

    def client(self, timeout: float = 5.0) -> ThrottleClient:
        return ThrottleClient([self.socket_path], timeout=timeout)


StartThrottled = Callable[..., Throttled]


def write_rules(home: Path, text: str = RULES) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "rules.toml"
    path.write_text(text)
    return path


@pytest.fixture
def throttled_factory(daemon_factory: DaemonFactory, tmp_path: Path) -> StartThrottled:
    def start(
        home: Path | None = None, *, tcp: bool = False, rules: str | None = RULES, **settings: str
    ) -> Throttled:
        home = home or tmp_path / "home"
        env = {f"SLEIGH_THROTTLE_{k.upper()}": v for k, v in settings.items()}
        if rules is not None and not (home / "rules.toml").exists():
            write_rules(home, rules)
        if rules is not None:
            env["SLEIGH_THROTTLE_RULES"] = str(home / "rules.toml")
        argv = [sys.executable, "-m", "sleigh.daemons.throttle", "--home", str(home)]
        return Throttled(daemon_factory.start(argv, env=env, tcp=tcp), home)

    return start


@pytest.fixture
def throttled(throttled_factory: StartThrottled) -> Throttled:
    return throttled_factory()
