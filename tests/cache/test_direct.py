"""Direct LMDB reads: hits, misses, expiry, late and replaced environments, fork, a busy writer.

The writer runs in another process, as the daemon does: LMDB forbids one
process to open an environment twice, so the test process only reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sleigh.daemons.cache.codec import decode, encode
from sleigh.daemons.cache.direct import DirectReader, release_reader, shared_reader

NOW_MS = 1_700_000_000_000

_WRITER = r"""
import json, struct, sys
import lmdb
path = sys.argv[1]
env = lmdb.open(path, map_size=8 << 20, subdir=True, max_dbs=4, max_readers=64)
data = env.open_db(b"data")
env.open_db(b"expiry")
held = None
for line in sys.stdin:
    cmd = json.loads(line)
    op = cmd["op"]
    if op == "put":
        with env.begin(write=True, db=data) as txn:
            header = struct.pack("<Q", cmd["expiry"])
            txn.put(cmd["key"].encode(), header + bytes.fromhex(cmd["value"]))
    elif op == "raw":
        with env.begin(write=True, db=data) as txn:
            txn.put(cmd["key"].encode(), bytes.fromhex(cmd["value"]))
    elif op == "delete":
        with env.begin(write=True, db=data) as txn:
            txn.delete(cmd["key"].encode())
    elif op == "hold":
        held = env.begin(write=True, db=data)
        held.put(b"held", struct.pack("<Q", 0) + b"uncommitted")
    elif op == "release":
        held.commit()
        held = None
    print("ok", flush=True)
"""


class Writer:
    """The daemon's part: the only process writing the environment at *path*."""

    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def _send(self, **cmd: object) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline() == "ok\n"

    def put(self, key: str, payload: bytes, expiry_ms: int = 0) -> None:
        self._send(op="put", key=key, value=payload.hex(), expiry=expiry_ms)

    def delete(self, key: str) -> None:
        self._send(op="delete", key=key)

    def hold(self) -> None:
        """Begin a write transaction and keep it open."""
        self._send(op="hold")

    def release(self) -> None:
        self._send(op="release")

    def put_raw(self, key: str, stored: bytes) -> None:
        """Store *stored* as the whole LMDB value, header included (or not)."""
        self._send(op="raw", key=key, value=stored.hex())

    def stop(self) -> None:
        assert self.proc.stdin is not None
        if self.proc.stdin.closed:
            return
        self.proc.stdin.close()
        assert self.proc.wait(timeout=10) == 0
        assert self.proc.stdout is not None
        self.proc.stdout.close()


class Clock:
    def __init__(self, now: int = NOW_MS) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def env_path(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def writer(env_path: Path) -> Iterator[Writer]:
    w = Writer(env_path)
    w.put("warm", b"up")  # the environment exists once this returns
    yield w
    w.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def reader(env_path: Path, clock: Clock) -> Iterator[DirectReader]:
    r = DirectReader(env_path, clock_ms=clock)
    yield r
    r.close()


def test_hit_returns_the_payload_without_its_header(writer: Writer, reader: DirectReader) -> None:
    writer.put("k", b"payload", NOW_MS + 5_000)
    assert reader.get(b"k") == b"payload"
    assert reader.available


def test_miss_returns_none(writer: Writer, reader: DirectReader) -> None:
    assert reader.get(b"absent") is None
    assert reader.get_decoded(b"absent", decode) is None
    assert reader.pttl(b"absent") == -2


def test_expired_entry_is_a_miss(writer: Writer, reader: DirectReader, clock: Clock) -> None:
    writer.put("k", b"v", NOW_MS + 1_000)
    assert reader.get(b"k") == b"v"
    assert reader.pttl(b"k") == 1_000
    clock.now = NOW_MS + 999
    assert reader.get(b"k") == b"v"
    clock.now = NOW_MS + 1_000
    assert reader.get(b"k") is None
    assert reader.get_many([b"k"]) == [None]
    assert reader.pttl(b"k") == -2


def test_entry_without_expiry_never_expires(
    writer: Writer, reader: DirectReader, clock: Clock
) -> None:
    writer.put("k", b"forever", 0)
    clock.now = 2**62
    assert reader.get(b"k") == b"forever"
    assert reader.pttl(b"k") == -1


def test_get_decoded_decodes_inside_the_transaction(writer: Writer, reader: DirectReader) -> None:
    value = {"sku": "T-1000", "price": [12, 99], "tags": {"toy"}}
    writer.put("p", encode(value), NOW_MS + 60_000)
    seen: list[type] = []

    def spy(buf: memoryview) -> object:
        seen.append(type(buf))
        return decode(buf)

    assert reader.get_decoded(b"p", spy) == value
    assert seen == [memoryview]


def test_get_many_mixes_hits_misses_and_expired(writer: Writer, reader: DirectReader) -> None:
    writer.put("a", encode(1), NOW_MS + 10)
    writer.put("b", encode(2), NOW_MS - 10)
    writer.put("c", encode(3), 0)
    keys = [b"a", b"b", b"c", b"d"]
    assert reader.get_many(keys) == [encode(1), None, encode(3), None]
    assert reader.get_many_decoded(keys, decode) == [1, None, 3, None]
    assert reader.get_many([]) == []


def test_deleted_entry_is_a_miss(writer: Writer, reader: DirectReader) -> None:
    writer.put("k", b"v")
    assert reader.get(b"k") == b"v"
    writer.delete("k")
    assert reader.get(b"k") is None


def test_missing_environment_is_a_miss_then_picked_up(env_path: Path, clock: Clock) -> None:
    reader = DirectReader(env_path, clock_ms=clock)
    assert reader.get(b"k") is None
    assert not reader.available
    writer = Writer(env_path)
    try:
        writer.put("k", b"late")
        clock.now += 500  # the failed open is not retried within a second
        assert reader.get(b"k") is None
        clock.now += 500
        assert reader.get(b"k") == b"late"
        assert reader.available
    finally:
        reader.close()
        writer.stop()


def test_replaced_environment_is_picked_up_within_a_second(
    writer: Writer, reader: DirectReader, env_path: Path, clock: Clock
) -> None:
    writer.put("k", b"old")
    assert reader.get(b"k") == b"old"
    writer.stop()
    env_path.rename(env_path.with_name("cache.broken"))
    fresh = Writer(env_path)
    try:
        fresh.put("k", b"new")
        assert reader.get(b"k") == b"old"  # the old file, until the next check
        clock.now += 1_000
        assert reader.get(b"k") == b"new"
        clock.now += 1_000
        assert reader.get(b"k") == b"new"
    finally:
        fresh.stop()


def _own_reader_slot(reader: DirectReader) -> bool:
    """Whether this process holds a slot in the reader table during a read."""
    env = reader._env
    assert env is not None
    pid = str(os.getpid())
    table = reader.get_decoded(b"k", lambda _: env.readers())
    assert table is not None
    return any(line.split()[:1] == [pid] for line in table.splitlines())


def test_forked_child_reopens_and_parent_keeps_reading(
    writer: Writer, reader: DirectReader
) -> None:
    writer.put("k", b"before fork")
    assert reader.get(b"k") == b"before fork"  # opened in the parent
    inherited = id(reader._env)  # an id, not a reference: the child must be able to drop it
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 1
        try:
            ok = reader.get(b"k") == b"before fork" and reader.available
            reopened = reader._env is not None and reader._pid == os.getpid()
            code = 0 if ok and reopened and _own_reader_slot(reader) else 2
            reader.close()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert id(reader._env) == inherited
    assert reader.get(b"k") == b"before fork"
    writer.put("k", b"after fork")
    assert reader.get(b"k") == b"after fork"
    assert _own_reader_slot(reader)


def test_reader_is_not_blocked_by_an_open_write_transaction(
    writer: Writer, reader: DirectReader
) -> None:
    writer.put("k", b"committed")
    writer.hold()
    assert reader.get(b"k") == b"committed"
    assert reader.get(b"held") is None  # not committed yet
    writer.release()
    assert reader.get(b"held") == b"uncommitted"


def test_malformed_entry_shorter_than_its_header_is_a_miss(
    writer: Writer, reader: DirectReader
) -> None:
    writer.put_raw("short", b"\x00\x00")
    writer.put_raw("bare", b"\x00" * 8)
    assert reader.get(b"short") is None
    assert reader.get(b"bare") == b""


def test_closed_reader_reopens_on_next_read(writer: Writer, reader: DirectReader) -> None:
    writer.put("k", b"v")
    assert reader.get(b"k") == b"v"
    reader.close()
    assert reader.get(b"k") == b"v"


def test_shared_reader_is_one_per_path_and_counted(writer: Writer, env_path: Path) -> None:
    writer.put("k", b"v")
    first = shared_reader(env_path)
    second = shared_reader(env_path / ".." / "cache")
    try:
        assert first is second
        assert first.get(b"k") == b"v"
        release_reader(first)
        assert second.get(b"k") == b"v"
    finally:
        release_reader(second)
    assert shared_reader(env_path) is not first
    release_reader(shared_reader(env_path))
