"""Two hosts' worth of daemons on one machine, replicating over multicast on loopback."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from sleigh.daemons.cache.client import CacheClient
from sleigh.daemons.control import replication_cmd
from sleigh.daemons.control.settings import load_settings
from sleigh.daemons.replicator.stats import fetch
from tests.plugins.cache import CacheDaemon, StartCached
from tests.plugins.daemons import Daemon, DaemonFactory, short_tmpdir
from tests.plugins.procfs import assert_steady
from tests.replicator import stranger
from tests.replicator.hosts import digest, random_group, wait_for, write_secret

DEADLINE = 20.0


@dataclass
class Host:
    cache: CacheDaemon
    mcastd: Daemon
    group: tuple[str, int]

    @property
    def stats_path(self) -> Path:
        assert isinstance(self.mcastd.address, Path)
        return self.mcastd.address

    def client(self) -> CacheClient:
        return CacheClient(self.cache.socket_path, direct=False)


@pytest.fixture(params=["thread", "reader"])
def cluster(
    request: pytest.FixtureRequest,
    cached_factory: StartCached,
    daemon_factory: DaemonFactory,
    tmp_path: Path,
) -> list[Host]:
    group, port = random_group()
    short = short_tmpdir()
    secret = write_secret(tmp_path / "cluster.secret")
    hosts = []
    for name in ("a", "b"):
        home = tmp_path / name
        cache = cached_factory(home=home, publish=str(short / f"{name}.pub"))
        env = {
            "SLEIGH_CACHE_SOCKET": str(cache.socket_path),
            "SLEIGH_CACHE_PUBLISH": str(short / f"{name}.pub"),
            "SLEIGH_REPLICATOR_SECRET_FILE": str(secret),
            "SLEIGH_REPLICATOR_GROUP": group,
            "SLEIGH_REPLICATOR_PORT": str(port),
            "SLEIGH_REPLICATOR_INTERFACE": "127.0.0.1",
            "SLEIGH_REPLICATOR_RECEIVE_PATH": request.param,
        }
        argv = [sys.executable, "-m", "sleigh.daemons.replicator", "--home", str(home)]
        hosts.append(Host(cache, daemon_factory.start(argv, env=env), (group, port)))
    return hosts


def test_writes_on_one_host_appear_on_the_other(cluster: list[Host]) -> None:
    a, b = cluster
    with a.client() as ca, b.client() as cb:
        for i in range(200):
            ca.set(f"k{i}", {"i": i, "blob": "x" * (i * 50)}, 300)
        ca.set("big", "y" * 200_000, 300)  # split into many datagrams
        cb.set("from-b", [1, 2, 3], 300)
        ca.set("session", {"only": "a"}, 300, local=True)
        ca.delete("k0")
        ca.touch("k1", 60)

        def arrived() -> bool:
            return (
                cb.get("k199") is not None
                and cb.get("big") is not None
                and cb.get("k0") is None
                and ca.get("from-b") is not None
            )

        wait_for(arrived, DEADLINE, "the writes on the other host")
        assert cb.get("session") is None and ca.get("session") == {"only": "a"}
        ca.delete("session")  # the one difference, by design
        wait_for(
            lambda: digest(a.cache.env_path) == digest(b.cache.env_path),
            DEADLINE,
            "both caches equal",
        )
        assert 0 < ca.get_raw("k1")[1] <= 60_000 and 0 < cb.get_raw("k1")[1] <= 60_000
    sa, sb = fetch(a.stats_path), fetch(b.stats_path)
    assert [p["state"] for p in sb["peers"]] == ["alive"]
    assert sb["peers"][0]["sender"] == sa["sender"]
    assert sb["rejected"] == {} and sa["daemon"]["feed_gaps"] == 0


def test_a_stream_of_bad_datagrams_leaks_nothing(cluster: list[Host]) -> None:
    """The group's own datagrams replayed, forged, cut short and padded past any MTU,
    and noise, thousands of each: none applied, every bad one counted, no descriptor or
    memory kept by either daemon, and replication goes on."""
    a, b = cluster
    group, port = a.group
    heard = stranger.join(group, port, "127.0.0.1")
    heard.settimeout(0.5)
    captured: list[bytes] = []
    with a.client() as ca:
        for i in range(40):
            ca.set(f"c{i}", "v" * (i * 60), 300)
        with contextlib.suppress(TimeoutError):
            while len(captured) < 200:
                captured.append(heard.recv(65535))
    heard.close()
    assert captured, "heard nothing of the group"
    rng = random.Random(5)
    bad = [v for data in captured for v in stranger.variants(data).values()] + [
        rng.randbytes(rng.randrange(1, 1500)) for _ in range(200)
    ]
    out = stranger.sender("127.0.0.1")

    def rejected() -> int:
        return sum(sum(fetch(h.stats_path)["rejected"].values()) for h in (a, b))

    counted: list[int] = []  # what the daemons rejected after each round

    def round_of_garbage(n: int) -> None:
        """*n* bad datagrams, then until the daemons have taken them (counters still)."""
        for i in range(n):
            out.sendto(bad[i % len(bad)], (group, port))
            if i % 64 == 63:
                time.sleep(0.002)  # a burst at a time: kernel drops would prove nothing
        was = -1
        while (now := rejected()) != was:
            was = now
            time.sleep(0.3)
        counted.append(now)

    try:
        assert_steady([a.mcastd.pid, b.mcastd.pid], round_of_garbage, 2_000, 12_000)
    finally:
        out.close()
    assert counted[1] - counted[0] > 5_000
    with a.client() as ca, b.client() as cb:
        assert all(cb.get(f"c{i}") == "v" * (i * 60) for i in range(40))
        ca.set("after", "the storm", 300)
        wait_for(lambda: cb.get("after") == "the storm", DEADLINE, "a write after the storm")


def test_stats_socket_answers_json(cluster: list[Host]) -> None:
    a, _ = cluster
    snapshot = fetch(a.stats_path)
    assert {"sender", "sent", "peers", "rejected", "daemon"} <= set(snapshot)
    assert snapshot["daemon"]["kernel_rcvbuf_errors"] >= 0


def test_secret_must_exist_and_be_private(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "sleigh.daemons.replicator", "--home", str(tmp_path)]
    missing = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert missing.returncode == 3 and "does not exist" in missing.stderr
    write_secret(tmp_path / "replicator.secret", mode=0o640)
    loose = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert loose.returncode == 3 and "chmod 600" in loose.stderr
    write_secret(tmp_path / "replicator.secret", secret=b"short")
    short = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert short.returncode == 3 and "at least 16" in short.stderr


async def test_status_and_command_of_a_running_daemon(
    cluster: list[Host], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, _ = cluster
    settings = load_settings(None, {"SLEIGH_REPLICATOR_SOCKET": str(a.stats_path)}, home=tmp_path)
    component = await replication_cmd.status(settings)
    assert component.state == "up", component.details
    assert component.details["alive"] == 1 and component.details["rejected"] == 0
    args = argparse.Namespace(json=True)
    assert await asyncio.to_thread(replication_cmd.cmd_status, args, settings, {}) == 0
    assert json.loads(capsys.readouterr().out)["sender"] == component.details["sender"]
    args = argparse.Namespace(json=False)
    assert await asyncio.to_thread(replication_cmd.cmd_status, args, settings, {}) == 0
    assert "alive" in capsys.readouterr().out
