"""Pytest plugin: a real ``sleigh-cached`` on a real LMDB file, per test.

``cached`` starts the daemon through ``daemon_factory`` (socket handed over,
readiness by ``READY=1``, clean SIGTERM checked at teardown) on a fresh
home; ``cached_factory`` starts more, with environment overrides, for tests
that restart a daemon on the same home.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.plugins.daemons import Daemon, DaemonFactory

__all__ = ["CacheDaemon", "StartCached", "cached", "cached_factory"]


@dataclass
class CacheDaemon:
    daemon: Daemon
    home: Path

    @property
    def socket_path(self) -> Path:
        assert isinstance(self.daemon.address, Path)
        return self.daemon.address

    @property
    def env_path(self) -> Path:
        return self.home / "cache"


StartCached = Callable[..., CacheDaemon]


@pytest.fixture
def cached_factory(daemon_factory: DaemonFactory, tmp_path: Path) -> StartCached:
    def start(home: Path | None = None, **settings: str) -> CacheDaemon:
        home = home or tmp_path / "home"
        env = {f"SLEIGH_CACHE_{k.upper()}": v for k, v in settings.items()}
        env.setdefault("SLEIGH_CACHE_MAP_SIZE", "64MiB")
        env.setdefault("SLEIGH_CACHE_SYNC", "none")
        argv = [sys.executable, "-m", "sleigh.daemons.cache", "--home", str(home)]
        return CacheDaemon(daemon_factory.start(argv, env=env), home)

    return start


@pytest.fixture
def cached(cached_factory: StartCached) -> CacheDaemon:
    return cached_factory()
