"""Three hosts in network namespaces on a bridge, loss injected with nftables (root only).

One lab for the module (starting six daemons is the slow part); each test
leaves it converged and without loss rules. Assertions are on converged
caches (equal digests within a deadline) and on counters, never on speed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import lmdb
import pytest

from sleigh.daemons.cache.client import CacheClient
from tests.plugins.daemons import DaemonFactory, short_tmpdir
from tests.replicator.hosts import wait_for, write_secret
from tests.replicator.netns import Host, Lab, netns_required, run

pytestmark = netns_required()

DEADLINE = 30.0
ROOT = Path(__file__).resolve().parent.parent.parent
#: Small enough that a partition of a few MB outruns it; large enough for a 1 MB object.
OPTIONS = {"retransmit_buffer": "2MiB", "give_up": "1s", "heartbeat_interval": "50ms"}


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    base = short_tmpdir()
    lab = Lab(base, DaemonFactory(ROOT, base))
    try:
        secret = write_secret(base / "cluster.secret")
        for index, name in enumerate(("a", "b", "c"), start=1):
            host = lab.add_host(name, index)
            lab.start_cached(host)
            lab.start_mcastd(host, secret, **OPTIONS)
        lab.add_host("s", 9)  # the stranger: no daemons, not in the cluster
        wait_for(lambda: all(_alive_peers(h) == 2 for h in _members(lab)), DEADLINE, "peers")
        yield lab
    finally:
        problems = lab.close()
        shutil.rmtree(base, ignore_errors=True)
    assert not problems, "\n\n".join(problems)


def _members(lab: Lab) -> list[Host]:
    return [lab.hosts[n] for n in ("a", "b", "c")]


def _alive_peers(host: Host) -> int:
    peers: list[dict[str, Any]] = host.stats().get("peers", [])  # type: ignore[assignment]
    return sum(p["state"] == "alive" for p in peers)


def _peer_totals(host: Host, field: str) -> int:
    peers: list[dict[str, Any]] = host.stats().get("peers", [])  # type: ignore[assignment]
    return sum(int(p[field]) for p in peers)


def _rejected(host: Host) -> dict[str, int]:
    rejected: dict[str, Any] = host.stats().get("rejected", {})  # type: ignore[assignment]
    return {str(k): int(v) for k, v in rejected.items()}


def write(host: Host, items: Mapping[Any, object], ttl: float = 600) -> None:
    with CacheClient(host.cache_socket, direct=False, timeout=10) as client:
        client.set_many(items, ttl)


def converge(lab: Lab, hosts: list[Host] | None = None, timeout: float = DEADLINE) -> None:
    members = hosts or _members(lab)

    def equal() -> bool:
        return len({h.digest() for h in members}) == 1

    wait_for(equal, timeout, "equal cache digests on " + ", ".join(h.name for h in members))


def loss(host: Host, port: int, percent: int, hook: str = "input") -> Callable[[], None]:
    """Drop *percent*% of the group's datagrams at *host*; returns the undo."""
    host.nft(
        f"table inet slrloss {{\n chain {hook} {{\n type filter hook {hook} priority 0;\n"
        f" udp dport {port} numgen random mod 100 < {percent} drop\n }}\n}}\n"
    )
    return lambda: host.nft("delete table inet slrloss")


def fragments_counter(host: Host) -> Callable[[], int]:
    """Count IP fragments arriving on *host*'s eth0; returns the reader."""
    host.nft(
        "table netdev slrfrag {\n chain in {\n type filter hook ingress device eth0 priority 0;\n"
        " ip frag-off & 0x3fff != 0 counter\n }\n}\n"
    )

    def read() -> int:
        out = run("nft", "list", "table", "netdev", "slrfrag", ns=host.ns)
        return int(out.split("packets ")[1].split()[0])

    return read


def items(prefix: str, count: int, size: int = 1000) -> dict[str, object]:
    return {f"{prefix}{i}": f"{prefix}{i}:" + "v" * size for i in range(count)}


def test_clean(lab: Lab) -> None:
    a = lab.hosts["a"]
    write(a, items("clean", 500))
    write(lab.hosts["b"], items("fromb", 100))
    converge(lab)
    for host in _members(lab):
        assert _peer_totals(host, "gaps") == 0
        assert _rejected(host) == {}


@pytest.mark.parametrize("percent", [5, 20])
def test_loss_at_the_receivers(lab: Lab, percent: int) -> None:
    a, b, c = _members(lab)
    undo = [loss(h, lab.port, percent) for h in (b, c)]
    try:
        write(a, items(f"loss{percent}-", 1000))
        converge(lab)
    finally:
        for u in undo:
            u()
    assert _peer_totals(b, "recovered") > 0 and _peer_totals(c, "recovered") > 0
    assert _peer_totals(b, "gaps") == 0 and _peer_totals(c, "gaps") == 0


def test_correlated_loss_at_the_sender(lab: Lab) -> None:
    a, b, c = _members(lab)
    repairs = int(a.stats()["sent"]["repairs"])  # type: ignore[index]
    undo = loss(a, lab.port, 10, hook="output")
    try:
        write(a, items("corr", 1000))
        converge(lab)
    finally:
        undo()
    assert int(a.stats()["sent"]["repairs"]) > repairs  # type: ignore[index]
    assert _peer_totals(b, "gaps") == 0 and _peer_totals(c, "gaps") == 0


def test_deterministic_tail_loss(lab: Lab) -> None:
    a, b, _ = _members(lab)
    high = int(a.stats()["sent"]["high"])  # type: ignore[index]
    # DATA datagrams (type 1 at byte 5) with a sequence past high + 15 (bytes 28-35)
    # are dropped at b: the last five of the twenty writes, and nothing after
    # them tells b they exist but the heartbeats.
    b.nft(
        "table inet slrtail {\n chain input {\n type filter hook input priority 0;\n"
        f" udp dport {lab.port} @th,104,8 1 @th,288,64 > {high + 15} drop\n }}\n}}\n"
    )
    recovered = _peer_totals(b, "recovered")
    sender = str(a.stats()["sender"])

    def knows_the_tail() -> bool:
        peers: list[dict[str, Any]] = b.stats()["peers"]  # type: ignore[assignment]
        stream = next(p for p in peers if p["sender"] == sender)
        return int(stream["high"]) >= high + 20 and int(stream["delivered"]) == high + 15

    try:
        write(a, items("tail", 20, size=100))
        wait_for(knows_the_tail, DEADLINE, "b to learn of the tail from heartbeats alone")
    finally:
        b.nft("delete table inet slrtail")
    converge(lab)
    assert _peer_totals(b, "recovered") >= recovered + 5
    assert _peer_totals(b, "gaps") == 0


def test_large_objects_under_loss_never_exceed_the_mtu(lab: Lab) -> None:
    a, b, c = _members(lab)
    counters = [fragments_counter(h) for h in (b, c)]
    undo = [loss(h, lab.port, 5) for h in (b, c)]
    try:
        for size in (64 * 1024, 256 * 1024, 1000 * 1024):
            write(a, {f"big{size}": "x" * size})
        converge(lab)
        fragments = [read() for read in counters]
    finally:
        for u in undo:
            u()
        for h in (b, c):
            h.nft("delete table netdev slrfrag")
    assert fragments == [0, 0]  # the daemon split every object itself
    assert _peer_totals(b, "recovered") > 0 and _peer_totals(b, "gaps") == 0


def test_partition_longer_than_the_retransmit_buffer(lab: Lab) -> None:
    a, b, c = _members(lab)
    c.nft(
        "table inet slrpart {\n chain input {\n type filter hook input priority 0;\n"
        f" udp dport {lab.port} drop\n }}\n chain output {{\n"
        f" type filter hook output priority 0;\n udp dport {lab.port} drop\n }}\n}}\n"
    )
    gaps = _peer_totals(c, "gaps")
    try:
        for i in range(4):  # 4 MB through a 2 MiB retransmit buffer
            write(a, {f"part{i}": f"{i}" * (1000 * 1024)})
        converge(lab, [a, b])
    finally:
        c.nft("delete table inet slrpart")
    wait_for(lambda: _peer_totals(c, "gaps") > gaps, DEADLINE, "c to report the gap")
    assert int(c.stats()["daemon"]["unrecoverable"]) > 0  # type: ignore[index]
    write(a, {"after-partition": "healed"})
    wait_for(lambda: _get(c, "after-partition") == "healed", DEADLINE, "c to catch up")
    # c serves nothing it cannot vouch for: all it holds, a holds the same.
    assert _entries(c) <= _entries(a)
    # and the cluster converges again once the lost objects are written anew
    write(a, {f"part{i}": f"{i}" * (1000 * 1024) for i in range(4)})
    _rewrite_everything(a)
    converge(lab)


def _get(host: Host, key: str) -> object:
    with CacheClient(host.cache_socket, direct=False) as client:
        return client.get(key)


def _entries(host: Host) -> set[tuple[bytes, bytes]]:
    env = lmdb.open(str(host.home / "cache"), readonly=True, max_dbs=8)
    try:
        with env.begin(db=env.open_db(b"data", create=False)) as txn:
            return {(bytes(k), bytes(v)) for k, v in txn.cursor()}
    finally:
        env.close()


def _rewrite_everything(host: Host) -> None:
    """Write every entry of *host* again (what a cold cache does on its misses)."""
    with CacheClient(host.cache_socket, direct=False) as client:
        keys = [k for k, _ in _entries(host)]
        for key in keys:
            raw, ttl = client.get_raw(key)
            if raw is not None and ttl > 0:
                client._redis.set(key, raw, px=ttl)


def test_stranger_datagrams_are_never_applied(lab: Lab, tmp_path: Path) -> None:
    a, b, c = _members(lab)
    s = lab.hosts["s"]
    capture_file = tmp_path / "captured"
    stranger = [sys.executable, "-m", "tests.replicator.stranger"]
    listen = subprocess.Popen(
        ["ip", "netns", "exec", s.ns, *stranger, "capture", str(capture_file), "3",
         lab.group, str(lab.port), s.address],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert listen.stdout is not None
        assert listen.stdout.readline().strip() == "joined"  # the stranger hears the group
        write(a, {"victim": "v1", **items("stranger", 20, size=100)})
        captured = int(listen.communicate(timeout=30)[0].strip())
    finally:
        if listen.poll() is None:
            listen.kill()
            listen.wait()
    assert captured > 0
    write(a, {"victim": "v2"})
    converge(lab)
    before = [(_rejected(h), _peer_totals(h, "duplicates")) for h in (b, c)]
    out = run(*stranger, "send", str(capture_file), lab.group, str(lab.port), s.address, ns=s.ns)
    assert "forged" in out
    for host, (rejected, _) in zip((b, c), before, strict=True):

        def counted(h: Host = host, r: dict[str, int] = rejected) -> bool:
            now = _rejected(h)
            return all(now.get(k, 0) > r.get(k, 0) for k in ("bad_mac", "truncated", "oversized"))

        wait_for(counted, DEADLINE, f"{host.name} to count the stranger's datagrams")
    for host, (_, duplicates) in zip((b, c), before, strict=True):
        assert _peer_totals(host, "duplicates") > duplicates  # the replays, dropped as such
        assert _get(host, "victim") == "v2"
    converge(lab)


def test_restarted_sender_is_a_new_stream(lab: Lab) -> None:
    a, b, c = _members(lab)
    old = str(a.stats()["sender"])
    assert lab.stop_mcastd(a) == 0
    secret = Path(a.env["SLEIGH_REPLICATOR_SECRET_FILE"])
    lab.start_mcastd(a, secret, **OPTIONS)
    new = str(a.stats()["sender"])
    assert new != old
    write(a, items("restart", 200))
    converge(lab)
    for host in (b, c):
        senders = {p["sender"] for p in host.stats()["peers"]}  # type: ignore[attr-defined]
        assert new in senders and old not in senders
    # a resumed b's and c's streams where its predecessor stopped: none of their old
    # writes was applied again (over newer ones: the partition test rewrote them on a).
    # a knows a peer from its first heartbeat: the caches may converge before both came.
    wait_for(lambda: _alive_peers(a) == 2, DEADLINE, "a hears b and c again")
    peers: list[dict[str, Any]] = a.stats()["peers"]  # type: ignore[assignment]
    assert len(peers) == 2 and all(p["ops"] == 0 for p in peers)
