"""The real daemon: decisions, kill -9 and replay, SIGHUP rules, bad frames, sharding."""

from __future__ import annotations

import asyncio
import random
import signal
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from sleigh.daemons.throttle import protocol as p
from sleigh.daemons.throttle.client import AsyncThrottleClient, ThrottleClient
from sleigh.daemons.throttle.errors import ClientError, ServerError
from sleigh.daemons.throttle.logfile import HEADER, RECORD
from tests.plugins.daemons import exchange
from tests.plugins.procfs import assert_steady
from tests.throttle.conftest import RULES, StartThrottled, Throttled


def _exhaust(client: ThrottleClient, key: bytes, times: int) -> None:
    for _ in range(times):
        assert client.check([key]).allowed


def test_decisions_show_and_reset(throttled: Throttled) -> None:
    with throttled.client() as client:
        _exhaust(client, b"ip:a", 5)
        denied = client.check([b"ip:a"])
        assert not denied.allowed and 11.5 < denied.retry_after <= 12.0
        shown = client.show(b"ip:a")
        assert shown["rule"] == "ip" and shown["remaining"] == 0
        assert client.reset(b"ip:a") and client.check([b"ip:a"]).allowed
        with pytest.raises(ServerError, match="no rule"):
            client.check([b"nokind:a"])
        stats = client.stats()
        assert stats["denied"] == 1 and stats["errors"] == 1 and stats["keys"] == 1


def test_all_or_nothing_over_two_rules(throttled: Throttled) -> None:
    with throttled.client() as client:
        _exhaust(client, b"login:a", 2)
        assert not client.check([b"ip:a", b"login:a"]).allowed
        assert client.show(b"ip:a")["known"] is False
        charged = client.charge([b"cpu:a"], [2_000_000])
        assert not charged.allowed and charged.retry_after > 0
        assert not client.check([b"cpu:a"], [0]).allowed


def test_tcp(throttled_factory: StartThrottled) -> None:
    d = throttled_factory(tcp=True)
    assert isinstance(d.daemon.address, tuple)
    with ThrottleClient([d.daemon.address], timeout=5) as client:
        assert client.check([b"ip:a"]).allowed


def test_kill_9_then_restart_keeps_every_limit(throttled_factory: StartThrottled) -> None:
    first = throttled_factory()
    with first.client() as client:
        _exhaust(client, b"ip:a", 5)
        assert not client.check([b"ip:a"]).allowed
        _exhaust(client, b"ip:b", 2)
        for _ in range(6):
            client.check([b"login:z"])  # 2 admitted, 4 denied: into the penalty box
    first.daemon.send_signal(signal.SIGKILL)
    first.daemon.wait()
    second = throttled_factory(first.home)
    with second.client() as client:
        assert not client.check([b"ip:a"]).allowed
        assert client.check([b"ip:b"]).remaining == 2
        assert client.show(b"login:z")["blocked_for_ns"] > 9 * 60 * 10**9
    assert "3 live keys" in second.daemon.stderr_text()
    # compacted at start: one record per live key, the old log kept beside it
    assert first.log_path.stat().st_size >= HEADER.size + 3 * RECORD.size
    assert (first.home / "throttle" / "state.log.1").exists()


def test_sighup_reloads_the_rules_and_says_what_changed(throttled_factory: StartThrottled) -> None:
    throttled = throttled_factory()
    with throttled.client() as client:
        _exhaust(client, b"ip:a", 5)
        assert not client.check([b"ip:a"]).allowed
        (throttled.home / "rules.toml").write_text(
            RULES.replace('rate = 5\nper = "1m"\nburst = 5', 'rate = 5\nper = "1m"\nburst = 50')
        )
        throttled.daemon.send_signal(signal.SIGHUP)
        throttled.daemon.expect("RELOADING=1")
        throttled.daemon.expect("READY=1")
        assert client.check([b"ip:a"]).allowed
        assert "rules reloaded: changed ip (burst 5->50)" in throttled.daemon.stderr_text()
        (throttled.home / "rules.toml").write_text("[rules.ip]\nrate = -1\n")
        throttled.daemon.send_signal(signal.SIGHUP)
        throttled.daemon.expect("RELOADING=1")
        throttled.daemon.expect("READY=1")
        assert "rules reload refused" in throttled.daemon.stderr_text()
        assert client.check([b"ip:a"]).allowed  # the rules in force stay
        _exhaust(client, b"session:after", 3)  # logged to the compacted log
    throttled.daemon.send_signal(signal.SIGKILL)
    throttled.daemon.wait()
    (throttled.home / "rules.toml").write_text(RULES)
    again = throttled_factory(throttled.home)
    with again.client() as client:
        assert not client.check([b"session:after"]).allowed


def test_malformed_and_oversized_frames_get_errors_and_the_daemon_stays_up(
    throttled: Throttled,
) -> None:
    bad = p.PREFIX.pack(7, p.CHECK, 5) + b"\x01\x09"
    unknown = p.PREFIX.pack(5, 42, 6)
    ping = p.encode_request(p.PING, 7, [])
    replies = p.ReplyParser().feed(exchange(throttled.socket_path, bad + unknown + ping))
    assert [(status, rid) for status, rid, _ in replies] == [(p.ERROR, 5), (p.ERROR, 6), (p.OK, 7)]
    huge = struct.pack("<IBI", 1 << 31, p.CHECK, 8) + b"x" * 10_000
    replies = p.ReplyParser().feed(exchange(throttled.socket_path, huge))
    assert replies[0][0] == p.ERROR and b"frame length" in replies[0][2]
    for _ in range(200):
        exchange(throttled.socket_path, b"\xff" * 37)
    with throttled.client() as client:
        client.ping()
        assert client.stats()["errors"] >= 203


def test_a_stream_of_bad_frames_leaks_nothing(throttled: Throttled) -> None:
    """Bad frames of every kind, each on a connection of its own: errors, no descriptor
    or memory kept, no key stored, and the daemon still decides."""
    rng = random.Random(11)
    shapes: list[Callable[[], bytes]] = [
        lambda: rng.randbytes(rng.randrange(1, 16_000)),  # noise
        lambda: p.PREFIX.pack(7, p.CHECK, 5) + b"\x01\x09",  # a body that does not parse
        lambda: p.PREFIX.pack(5, 42, 6),  # an operation that does not exist
        lambda: struct.pack("<IBI", 1 << 31, p.CHECK, 8) + b"x" * 60_000,  # over the limit
        lambda: p.encode_request(p.CHECK, 9, [b"ip:" + rng.randbytes(6).hex().encode()])[:-3],
        lambda: p.encode_request(p.CHECK, 10, [b"nokind:" + rng.randbytes(6).hex().encode()]),
    ]

    def round_of_garbage(n: int) -> None:
        for i in range(n):
            exchange(throttled.socket_path, shapes[i % len(shapes)]())

    with throttled.client() as client:
        errors = client.stats()["errors"]
        assert_steady([throttled.daemon.pid], round_of_garbage, 200, 1200)
        stats = client.stats()
        assert stats["errors"] - errors >= 1000 and stats["keys"] == 0
        assert client.check([b"ip:after"]).allowed


def test_keys_are_sharded_over_two_daemons(
    throttled_factory: StartThrottled, tmp_path: Path
) -> None:
    one = throttled_factory(tmp_path / "one")
    two = throttled_factory(tmp_path / "two")
    keys = [f"ip:10.0.0.{i}".encode() for i in range(40)]
    with ThrottleClient([one.socket_path, two.socket_path], timeout=5) as client:
        for key in keys:
            assert client.check([key]).allowed
        counts = [client.stats(0)["keys"], client.stats(1)["keys"]]
        assert sum(counts) == 40 and min(counts) > 0
        # a request across both: denied on one daemon, so nothing charged on the other
        login = next(
            k for k in (f"login:{i}".encode() for i in range(99)) if client.ring.node(k) == 0
        )
        ip = next(k for k in keys if client.ring.node(k) == 1)
        before = client.show(ip)["remaining"]
        _exhaust(client, login, 2)
        assert not client.check([ip, login]).allowed
        assert client.show(ip)["remaining"] == before


async def test_async_client_pipelines(throttled: Throttled) -> None:
    client = AsyncThrottleClient([throttled.socket_path], timeout=5)
    try:
        replies = await asyncio.gather(*(client.check([b"session:s"]) for _ in range(5)))
        assert [r.allowed for r in replies] == [True, True, True, False, False]
        assert (await client.stats())["requests"] == 6
    finally:
        await client.aclose()


async def test_async_client_batches_and_times_out_in_order(throttled: Throttled) -> None:
    client = AsyncThrottleClient([throttled.socket_path], timeout=0.3)
    try:
        assert (await client.check([b"ip:t"])).allowed  # the connection is up
        throttled.daemon.send_signal(signal.SIGSTOP)
        try:
            late = await asyncio.gather(
                *(client.check([b"ip:t"]) for _ in range(3)), return_exceptions=True
            )
        finally:
            throttled.daemon.send_signal(signal.SIGCONT)
        assert all(isinstance(r, ClientError) and "timed out" in str(r) for r in late)
        # the late replies arrive on the same connection and are dropped, in order
        await asyncio.sleep(0.2)
        replies = await asyncio.gather(*(client.check([b"session:t"]) for _ in range(4)))
        assert [r.allowed for r in replies] == [True, True, True, False]
        assert (await client.stats())["requests"] == 9  # the late three were decided
        assert (await client.show(b"ip:t"))["remaining"] == 1  # 5 - 4
    finally:
        await client.aclose()


def test_no_daemon_is_a_client_error(tmp_path: Path) -> None:
    with (
        ThrottleClient([tmp_path / "none.sock"], timeout=0.01) as client,
        pytest.raises(ClientError),
    ):
        client.check([b"ip:a"])


def test_fast_and_general_paths_answer_in_order(throttled: Throttled) -> None:
    frames = [
        p.encode_request(p.CHECK, 1, [b"ip:f"]),
        p.encode_request(p.CHECK, 2, [b"ip:f", b"session:f"]),
        p.encode_request(p.CHECK, 3, [b"nokind:f"]),
        p.encode_request(p.CHECK, 4, [b"ip:f"], [9]),
        p.encode_request(p.CHECK, 5, [b"session:f"]),
    ]
    replies = p.ReplyParser().feed(exchange(throttled.socket_path, b"".join(frames)))
    assert [rid for _, rid, _ in replies] == [1, 2, 3, 4, 5]
    assert [status for status, _, _ in replies] == [p.OK, p.OK, p.ERROR, p.OK, p.OK]
    decisions = [p.DECISION.unpack(body)[0] for status, _, body in replies if status == p.OK]
    assert decisions == [1, 1, 0, 1]  # cost 9 is over the burst of 5


async def test_start_check_sends_at_once_or_says_it_cannot(
    throttled_factory: StartThrottled, tmp_path: Path
) -> None:
    one = throttled_factory(tmp_path / "one")
    two = throttled_factory(tmp_path / "two")
    single = AsyncThrottleClient([one.socket_path], timeout=5)
    sharded = AsyncThrottleClient([one.socket_path, two.socket_path], timeout=0.3)
    try:
        assert single.start_check([b"ip:s"]) is None  # no connection yet: check() makes it
        assert (await single.check([b"ip:s"])).allowed
        asked = single.start_check([b"session:s"], [4])
        assert asked is not None and not asked[1]  # nothing else in flight: written
        assert len(single.conns[0].waiting) == 1  # type: ignore[union-attr]  # on its way
        assert not (await asked[0]).allowed  # a cost of four: over the burst of three
        await sharded.check([b"ip:a"])
        await sharded.check([b"ip:b"])  # connections to both, whichever owns what
        keys = [f"ip:10.9.0.{i}".encode() for i in range(20)]
        spread = next(
            [a, b] for a in keys for b in keys if sharded.ring.node(a) != sharded.ring.node(b)
        )
        assert sharded.start_check(spread) is None  # two daemons: PEEK then CHECK
        same = [k for k in keys if sharded.ring.node(k) == sharded.ring.node(keys[0])][:2]
        asked = sharded.start_check(same)
        assert asked is not None and (await asked[0]).allowed
        node = sharded.ring.node(keys[0])
        daemon = (one, two)[node].daemon
        daemon.send_signal(signal.SIGSTOP)
        try:
            late = sharded.start_check(same)
            assert late is not None
            with pytest.raises(ClientError, match="timed out"):
                await late[0]
        finally:
            daemon.send_signal(signal.SIGCONT)
    finally:
        await single.aclose()
        await sharded.aclose()


def block_the_loop(seconds: float) -> None:
    """Keep the event loop's thread busy, as a turn of CPU-bound handlers does."""
    import time

    time.sleep(seconds)


async def test_a_started_check_is_on_the_wire_before_the_handler_runs(
    throttled: Throttled,
) -> None:
    client = AsyncThrottleClient([throttled.socket_path], timeout=0.05)
    try:
        assert (await client.check([b"ip:w"])).allowed  # connected
        first = client.start_check([b"ip:w1"])
        second = client.start_check([b"ip:w2"])  # the first is still in flight
        third = client.start_check([b"ip:w3"])
        assert first is not None and second is not None and third is not None
        assert [first[1], second[1], third[1]] == [False, True, True]  # queued: one write
        await asyncio.sleep(0)  # as the middleware does: the turn's batch goes out
        assert not client.conns[0].queued  # type: ignore[union-attr]
        block_the_loop(0.2)  # the handlers of this loop turn: longer than the deadline
        # all went out before the handlers, so the answers came in time; had the batch
        # waited for the end of the turn, it would have gone out late and timed out
        answers = [(await asked[0]).allowed for asked in (first, second, third)]
        assert answers == [True, True, True]
    finally:
        await client.aclose()


async def test_a_reply_that_came_is_read_before_its_deadline_fails_it(
    throttled: Throttled,
) -> None:
    client = AsyncThrottleClient([throttled.socket_path], timeout=5)
    try:
        assert (await client.check([b"ip:r"])).allowed  # connected
        asked = client.start_check([b"ip:r"])
        assert asked is not None and not asked[1]
        conn = client.conns[0]
        assert conn is not None
        block_the_loop(0.1)  # the reply comes meanwhile, unread
        conn.deadlines[0] = (0.0, conn.deadlines[0][1])  # ...and the deadline is past
        conn._expire()  # as when timers run before the loop polls
        assert (await asked[0]).allowed  # read, not failed
        # a deadline with nothing come is still a timeout
        throttled.daemon.send_signal(signal.SIGSTOP)
        try:
            late = client.start_check([b"ip:r"])
            assert late is not None
            block_the_loop(0.05)
            conn.deadlines[0] = (0.0, conn.deadlines[0][1])
            conn._expire()
            with pytest.raises(ClientError, match="timed out"):
                await late[0]
        finally:
            throttled.daemon.send_signal(signal.SIGCONT)
    finally:
        await client.aclose()
