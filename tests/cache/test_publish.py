"""The write feed of a real ``sleigh-cached``, read by a ZeroMQ SUB in the test."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
import redis
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from sleigh.daemons.cache import feed
from sleigh.daemons.cache.client import CacheClient
from sleigh.daemons.cache.feed import DELETE, EXPIRE, FLUSH, SET, Write
from sleigh.daemons.cache.replica import ReplicaWriter
from tests.plugins.cache import CacheDaemon, StartCached
from tests.plugins.daemons import short_tmpdir

DEADLINE = 10.0


class Feed:
    """A SUB socket on the daemon's feed, and every write read from it so far."""

    def __init__(self, path: Path) -> None:
        self.zmq = zmq.Context()
        self.sock = self.zmq.socket(zmq.SUB)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(f"ipc://{path}")
        self.messages: list[feed.Message] = []

    def writes(self) -> list[Write]:
        return [w for m in self.messages for w in m.writes]

    def read_until(self, key: bytes, timeout: float = DEADLINE) -> list[Write]:
        """Read until a write of *key* arrives; every write read."""
        deadline = time.monotonic() + timeout
        while not any(w.key == key for w in self.writes()):
            left = deadline - time.monotonic()
            assert left > 0, f"no write of {key!r} on the feed; got {self.writes()}"
            if self.sock.poll(int(min(left, 0.1) * 1000)):
                self.messages.append(feed.decode(self.sock.recv()))
        return self.writes()

    def close(self) -> None:
        self.sock.close(0)
        self.zmq.term()


@pytest.fixture
def feed_dir() -> Iterator[Path]:
    path = short_tmpdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def publishing(cached_factory: StartCached, feed_dir: Path) -> CacheDaemon:
    return cached_factory(publish=str(feed_dir / "c.pub"))


def subscribed(daemon: CacheDaemon, feed_path: Path) -> Feed:
    """A subscriber that has seen the feed work (a subscription takes a moment)."""
    sub = Feed(feed_path)
    with CacheClient(daemon.socket_path, direct=False) as client:
        deadline = time.monotonic() + DEADLINE
        while not sub.messages:
            assert time.monotonic() < deadline, "the feed never delivered"
            client.set(b"probe", b"x", 60)
            if sub.sock.poll(50):
                sub.messages.append(feed.decode(sub.sock.recv()))
    sub.messages.clear()
    return sub


def test_every_accepted_write_is_published_in_commit_order(
    publishing: CacheDaemon, feed_dir: Path
) -> None:
    sub = subscribed(publishing, feed_dir / "c.pub")
    r = redis.Redis(unix_socket_path=str(publishing.socket_path))
    try:
        before = int(time.time() * 1000)
        r.set(b"a", b"1")
        r.set(b"b", b"2", px=60_000)
        r.set(b"b", b"ignored", nx=True)  # changes nothing: not published
        r.pexpire(b"missing", 1000)  # changes nothing: not published
        r.pexpire(b"a", 30_000)
        r.set(b"b", b"3", keepttl=True)
        r.delete(b"a", b"zz")
        pipe = r.pipeline(transaction=False)  # the batched fast path
        for i in range(50):
            pipe.set(b"p%d" % i, b"v%d" % i)
        pipe.execute()
        r.flushdb()
        r.set(b"end", b"")
        writes = sub.read_until(b"end")
    finally:
        r.close()
        sub.close()
    head = writes[:6]
    assert head[0] == Write(SET, b"a", b"1", 0)
    assert head[1][:3] == (SET, b"b", b"2") and before + 60_000 <= head[1].expires_ms
    assert head[2][:3] == (EXPIRE, b"a", None) and before + 30_000 <= head[2].expires_ms
    assert head[3] == Write(SET, b"b", b"3", head[1].expires_ms)  # KEEPTTL kept it
    assert head[4:6] == [Write(DELETE, b"a", None, 0), Write(DELETE, b"zz", None, 0)]
    assert writes[6:56] == [Write(SET, b"p%d" % i, b"v%d" % i, 0) for i in range(50)]
    assert writes[56:] == [Write(FLUSH, b"", None, 0), Write(SET, b"end", b"", 0)]
    seqs = [m.seq for m in sub.messages]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert {m.origin for m in sub.messages} and all(m.origin for m in sub.messages)


def test_local_and_replicated_writes_are_not_published(
    publishing: CacheDaemon, feed_dir: Path
) -> None:
    sub = subscribed(publishing, feed_dir / "c.pub")
    r = redis.Redis(unix_socket_path=str(publishing.socket_path))
    replica = redis.Redis(
        unix_socket_path=str(publishing.socket_path), single_connection_client=True
    )
    try:
        with CacheClient(publishing.socket_path, direct=False) as client:
            client.set("session", {"cart": 3}, 60, local=True)
            assert client.get("session") == {"cart": 3}
        r.set(b"plain-local", b"x", px=5000)
        r.execute_command("SET", b"opt-local", b"y", "LOCAL")
        assert replica.execute_command("CLIENT", "REPLICATED", "ON") == b"OK"
        replica.set(b"from-peer", b"z")
        replica.execute_command("PEXPIREAT", b"from-peer", int(time.time() * 1000) + 60_000)
        replica.delete(b"plain-local")
        assert replica.execute_command("CLIENT", "REPLICATED", "OFF") == b"OK"
        replica.set(b"end", b"")
        writes = sub.read_until(b"end")
        assert r.get(b"from-peer") == b"z" and r.get(b"opt-local") == b"y"
    finally:
        r.close()
        replica.close()
        sub.close()
    assert [w.key for w in writes] == [b"plain-local", b"end"]


def test_bad_options_change_nothing(publishing: CacheDaemon) -> None:
    r = redis.Redis(unix_socket_path=str(publishing.socket_path))
    try:
        with pytest.raises(redis.ResponseError, match="syntax"):
            r.execute_command("SET", b"k", b"v", "LOCAL", "LOCAL")
        with pytest.raises(redis.ResponseError, match=r"client\|replicated"):
            r.execute_command("CLIENT", "REPLICATED", "MAYBE")
        assert r.get(b"k") is None
        assert r.info()["sleigh_publish_subscribed"] == 0
    finally:
        r.close()


def test_publishing_off(cached_factory: StartCached) -> None:
    daemon = cached_factory(publish="")
    r = redis.Redis(unix_socket_path=str(daemon.socket_path))
    try:
        r.set(b"k", b"v")
        assert r.info()["sleigh_publish"] == "off"
    finally:
        r.close()
    assert not (daemon.home / "run" / "cached.pub").exists()


async def test_replica_writer_applies_and_does_not_republish(
    publishing: CacheDaemon, feed_dir: Path
) -> None:
    sub = await asyncio.to_thread(subscribed, publishing, feed_dir / "c.pub")
    writer = ReplicaWriter(publishing.socket_path)
    expiry = int(time.time() * 1000) + 60_000
    try:
        refused = await writer.apply(
            [
                Write(SET, b"x", b"1", expiry),
                Write(SET, b"y", b"2", 0),
                Write(SET, b"big", b"v" * 2_000_000, 0),  # over value_max: refused
                Write(EXPIRE, b"y", None, expiry),
                Write(DELETE, b"x", None, 0),
            ]
        )
        assert refused == 1 and writer.applied == 4
        await writer._pipe.aclose()  # a new connection is marked replicated too
        assert await writer.apply([Write(SET, b"again", b"3", 0)]) == 0
        r = redis.Redis(unix_socket_path=str(publishing.socket_path))
        try:
            assert r.get(b"x") is None and r.get(b"y") == b"2" and r.get(b"again") == b"3"
            assert 0 < r.pttl(b"y") <= 60_000
            r.set(b"end", b"")
        finally:
            r.close()
        writes = await asyncio.to_thread(sub.read_until, b"end")
    finally:
        await writer.close()
        sub.close()
    assert [w.key for w in writes] == [b"end"]


def test_feed_decode_refuses_garbage() -> None:
    good = feed.encode("h", 1, [[SET, b"k", b"v", 0]])
    assert feed.decode(good) == feed.Message("h", 1, [Write(SET, b"k", b"v", 0)])
    bad = [
        b"",
        b"\xc1",
        msgpack.packb([2, "h", 1, []]),
        msgpack.packb([1, "h", "1", []]),
        msgpack.packb([1, "h", 1, [[9, b"k", None, 0]]]),
        msgpack.packb([1, "h", 1, [[SET, b"k", None, 0]]]),
        msgpack.packb([1, "h", 1, [[DELETE, "k", None, 0]]]),
        msgpack.packb([1, "h", 1, [[EXPIRE, b"k", None, -1]]]),
    ]
    for frame in bad:
        with pytest.raises(feed.FeedError):
            feed.decode(frame)


_leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.binary(max_size=8)
    | st.text(max_size=8)
    | st.sampled_from([SET, DELETE, EXPIRE, FLUSH, 1])
)
_anything = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(max_size=3) | st.integers(0, 9), inner, max_size=3)
    ),
    max_leaves=16,
)


@settings(max_examples=500, deadline=None)
@given(frame=_anything.map(lambda value: msgpack.packb(value, use_bin_type=True)) | st.binary())
def test_feed_decode_takes_any_frame_or_refuses_it(frame: bytes) -> None:
    """Nothing but :class:`~feed.FeedError` comes out of any frame (the replicator logs
    and skips those; anything else would stop its feed)."""
    try:
        message = feed.decode(frame)
    except feed.FeedError:
        return
    assert all(isinstance(w, Write) and isinstance(w.key, bytes) for w in message.writes)
