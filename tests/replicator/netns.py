"""A lab of network namespaces on one bridge, each host running the daemons (root only).

``Lab`` makes a namespace holding a bridge (multicast snooping off, so the
group floods to every port) and, per host, a namespace joined to it by a
veth pair, with address ``10.<net>.0.<n>/24``. Every process is started
with ``ip netns exec`` (which execs, so the pid is the daemon's own), through
:class:`~tests.plugins.daemons.DaemonFactory`, and stopped by its pid;
:meth:`Lab.close` deletes every namespace it made (the veth pairs and the
bridge go with them).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sleigh.daemons.control import cache_cmd, replication_cmd
from sleigh.daemons.control.supervisor import renice
from tests.plugins.daemons import Daemon, DaemonFactory

from .hosts import digest, stats


def run(*argv: str, ns: str | None = None, check: bool = True, text_in: str | None = None) -> str:
    cmd = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
    result = subprocess.run(cmd, input=text_in, capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {result.stderr.strip()}")
    return result.stdout


def netns_required() -> pytest.MarkDecorator:
    """Skip without root, ``ip netns`` and ``nft``; fail instead under
    ``SLEIGH_TEST_REQUIRE_NETNS=1`` (CI runs as root and must run these tests)."""
    if can_run():
        return pytest.mark.netns
    reason = "needs root, ip netns and nft"
    if os.environ.get("SLEIGH_TEST_REQUIRE_NETNS") == "1":
        pytest.fail(f"{reason} (SLEIGH_TEST_REQUIRE_NETNS=1)", pytrace=False)
    return pytest.mark.skip(reason=reason)


def can_run() -> bool:
    """Root, ``ip`` and ``nft``, and a namespace can be made."""
    if os.geteuid() != 0:
        return False
    try:
        name = f"slrchk{secrets.token_hex(3)}"
        run("ip", "netns", "add", name)
        run("ip", "netns", "del", name)
        run("nft", "--version")
    except (OSError, RuntimeError, subprocess.TimeoutExpired):
        return False
    return True


@dataclass
class Host:
    name: str
    ns: str
    address: str
    home: Path
    cached: Daemon | None = None
    mcastd: Daemon | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def cache_socket(self) -> Path:
        return self.home / "run" / "cached.sock"

    @property
    def stats_socket(self) -> Path:
        return self.home / "run" / "mcastd.sock"

    def digest(self) -> str:
        return digest(self.home / "cache")

    def stats(self) -> dict[str, object]:
        return stats(self.stats_socket)

    def nft(self, script: str) -> None:
        run("nft", "-f", "-", ns=self.ns, text_in=script)


def _as_units_run(daemon: Daemon, nice: int) -> Daemon:
    """Give *daemon* its unit's niceness *nice* (``Nice=``, as systemd and ``sleigh up``
    run it; the lab runs as root)."""
    renice("a lab daemon", daemon.pid, nice)
    return daemon


class Lab:
    """Namespaces on a bridge; hosts with ``sleigh-cached`` + ``sleigh-mcastd``."""

    def __init__(self, base: Path, factory: DaemonFactory, *, port: int = 4299) -> None:
        self.tag = secrets.token_hex(2)
        self.net = 50 + int(self.tag, 16) % 150
        self.base = base
        self.factory = factory
        self.port = port
        self.group = f"239.77.{self.net}.1"
        self.namespaces: list[str] = []
        self.hosts: dict[str, Host] = {}
        self.bridge_ns = self._namespace("br")
        run("ip", "link", "add", "br0", "type", "bridge", "mcast_snooping", "0", ns=self.bridge_ns)
        run("ip", "link", "set", "br0", "up", ns=self.bridge_ns)

    def _namespace(self, suffix: str) -> str:
        name = f"slr{self.tag}{suffix}"
        run("ip", "netns", "add", name)
        self.namespaces.append(name)
        run("ip", "link", "set", "lo", "up", ns=name)
        return name

    def add_host(self, name: str, index: int) -> Host:
        """A namespace on the bridge, address ``10.net.0.index`` on its ``eth0``."""
        ns = self._namespace(name)
        outer = f"v{self.tag}{name}"
        run("ip", "link", "add", outer, "netns", self.bridge_ns, "type", "veth", "peer", "eth0",
            "netns", ns)  # fmt: skip
        run("ip", "link", "set", outer, "master", "br0", "up", ns=self.bridge_ns)
        address = f"10.{self.net}.0.{index}"
        run("ip", "addr", "add", f"{address}/24", "dev", "eth0", ns=ns)
        run("ip", "link", "set", "eth0", "up", ns=ns)
        run("ip", "route", "add", "224.0.0.0/4", "dev", "eth0", ns=ns)
        host = Host(name, ns, address, self.base / name)
        host.home.mkdir(parents=True, exist_ok=True)
        self.hosts[name] = host
        return host

    def _argv(self, host: Host, module: str) -> list[str]:
        return ["ip", "netns", "exec", host.ns, sys.executable, "-m", module, "--home",
                str(host.home)]  # fmt: skip

    def start_cached(self, host: Host) -> Daemon:
        env = {"SLEIGH_CACHE_MAP_SIZE": "256MiB", "SLEIGH_CACHE_SYNC": "none"}
        host.cached = self.factory.start(
            self._argv(host, "sleigh.daemons.cache"), env=env, binds_itself=host.cache_socket
        )
        return _as_units_run(host.cached, cache_cmd.NICE)

    def start_mcastd(self, host: Host, secret: Path, **options: str) -> Daemon:
        env = {
            "SLEIGH_REPLICATOR_SECRET_FILE": str(secret),
            "SLEIGH_REPLICATOR_GROUP": self.group,
            "SLEIGH_REPLICATOR_PORT": str(self.port),
            "SLEIGH_REPLICATOR_INTERFACE": host.address,
            **{f"SLEIGH_REPLICATOR_{k.upper()}": v for k, v in options.items()},
        }
        host.env = env
        host.mcastd = self.factory.start(
            self._argv(host, "sleigh.daemons.replicator"), env=env, binds_itself=host.stats_socket
        )
        return _as_units_run(host.mcastd, replication_cmd.NICE)

    def stop_mcastd(self, host: Host) -> int:
        """SIGTERM to *host*'s replicator (by pid); its exit code."""
        assert host.mcastd is not None
        daemon = host.mcastd
        code = daemon.stop()
        daemon.close()
        self.factory.daemons.remove(daemon)
        host.mcastd = None
        return code

    def close(self) -> list[str]:
        """Stop every daemon (by pid, checked), then delete every namespace."""
        problems = self.factory.finish()
        for name in reversed(self.namespaces):
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                run("ip", "netns", "del", name)
        return problems
