"""Kept objects and write stamps: a direct reader hands out an object it decoded
before only while no write to its key has committed since, and never past its expiry.

The writer is the daemon's own :class:`~sleigh.daemons.cache.store.Store`, in
another process (LMDB forbids one process to open an environment twice).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sleigh.daemons.cache.codec import decode
from sleigh.daemons.cache.direct import DirectReader
from sleigh.daemons.cache.stamps import FILENAME, SLOTS, Receipt, StampReader, Stamps, slot_of

NOW_MS = 1_700_000_000_000

_WRITER = r"""
import json, sys
from pathlib import Path
from sleigh.daemons.cache.codec import encode
from sleigh.daemons.cache.ops import Delete, Expire, Flush, Set
from sleigh.daemons.cache.store import Store

path = Path(sys.argv[1])
def open_store():
    return Store.open(path, map_size=8 << 20, sync="none", clock_ms=lambda: 1_700_000_000_000)[0]
store = open_store()
for line in sys.stdin:
    cmd = json.loads(line)
    op, key = cmd["op"], cmd.get("key", "").encode()
    if op == "set":
        store.apply([Set(key, encode(cmd["value"]), cmd.get("expiry", 0))])
    elif op == "expire":
        store.apply([Expire(key, cmd["expiry"])])
    elif op == "delete":
        store.apply([Delete((key,))])
    elif op == "flush":
        store.apply([Flush()])
    elif op == "restart":
        store.close()
        store = open_store()
    print("ok", flush=True)
store.close()
"""


class Writer:
    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def send(self, op: str, key: str = "", **fields: object) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"op": op, "key": key, **fields}) + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline() == "ok\n"

    def stop(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        assert self.proc.wait(timeout=10) == 0
        self.proc.stdout.close()


class Clock:
    def __init__(self) -> None:
        self.now = NOW_MS

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def env_path(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def writer(env_path: Path) -> Iterator[Writer]:
    w = Writer(env_path)
    w.send("set", "warm", value="up")  # the environment and its stamps exist
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


def read(reader: DirectReader, *keys: str) -> list[object]:
    return reader.get_many_shared([k.encode() for k in keys], decode)


def test_an_unwritten_key_gives_the_object_decoded_before(
    writer: Writer, reader: DirectReader
) -> None:
    writer.send("set", "k", value=[1, 2, 3])
    first, missing = read(reader, "k", "nothing")
    assert first == [1, 2, 3] and missing is None
    again = read(reader, "k")[0]
    assert again is first
    # the plain read still decodes a fresh object every time
    assert reader.get_many_decoded([b"k"], decode)[0] is not first


def test_a_write_is_seen_by_the_next_read(writer: Writer, reader: DirectReader) -> None:
    writer.send("set", "k", value="old")
    assert read(reader, "k") == ["old"]
    writer.send("set", "k", value="new")
    assert read(reader, "k") == ["new"]
    writer.send("expire", "k", expiry=NOW_MS + 10)
    kept = read(reader, "k")[0]
    assert kept == "new" and read(reader, "k")[0] is kept
    writer.send("delete", "k")
    assert read(reader, "k") == [None]


def test_a_flush_drops_every_kept_object(writer: Writer, reader: DirectReader) -> None:
    writer.send("set", "a", value=1)
    writer.send("set", "b", value=2)
    assert read(reader, "a", "b") == [1, 2]
    writer.send("flush")
    assert read(reader, "a", "b") == [None, None]


def test_a_kept_object_is_not_handed_out_past_its_expiry(
    writer: Writer, reader: DirectReader, clock: Clock
) -> None:
    writer.send("set", "k", value="soon gone", expiry=NOW_MS + 1_000)
    assert read(reader, "k") == ["soon gone"]
    clock.now += 999
    assert read(reader, "k") == ["soon gone"]
    clock.now += 1
    assert read(reader, "k") == [None]


def test_keys_sharing_a_slot_only_cost_each_other_a_decode(
    writer: Writer, reader: DirectReader
) -> None:
    first = "k0"
    target = slot_of(first.encode())
    other = next(f"k{i}" for i in range(1, 10**7) if slot_of(f"k{i}".encode()) == target)
    writer.send("set", first, value="one")
    writer.send("set", other, value="two")
    one, two = read(reader, first, other)
    assert two == "two"
    writer.send("set", other, value="three")
    again, three = read(reader, first, other)
    assert (again, three) == ("one", "three")
    assert again == one and again is not one  # its slot moved: decoded again


def test_a_restarted_daemon_vouches_for_nothing_kept(writer: Writer, reader: DirectReader) -> None:
    writer.send("set", "k", value=["v"])
    kept = read(reader, "k")[0]
    writer.send("restart")
    again = read(reader, "k")[0]
    assert again == ["v"] and again is not kept


def test_without_a_stamps_file_nothing_is_kept(
    writer: Writer, env_path: Path, clock: Clock
) -> None:
    writer.send("set", "k", value=["v"])
    (env_path / FILENAME).unlink()
    reader = DirectReader(env_path, clock_ms=clock)
    try:
        first = read(reader, "k")[0]
        assert first == ["v"] and read(reader, "k")[0] is not first
    finally:
        reader.close()


def _receipt(reader: DirectReader, *keys: str) -> Receipt:
    receipt = Receipt()
    reader.get_many_shared([k.encode() for k in keys], decode, receipt)
    return receipt


def test_a_receipt_vouches_for_its_reads_until_one_key_is_written(
    writer: Writer, reader: DirectReader
) -> None:
    writer.send("set", "a", value=1)
    writer.send("set", "b", value=2)
    read(reader, "a")  # a kept, b read: both are noted
    receipt = _receipt(reader, "a", "b")
    assert receipt.complete and len(receipt.slots) == 2
    assert reader.vouches(receipt) and reader.vouches(receipt)
    writer.send("set", "c", value=3)  # another key: still vouched for
    assert reader.vouches(receipt)
    writer.send("set", "b", value=2)  # the same value, written again: not
    assert not reader.vouches(receipt)
    fresh = _receipt(reader, "a", "b")
    assert reader.vouches(fresh)
    writer.send("flush")
    assert not reader.vouches(fresh)


def test_a_receipt_lives_no_longer_than_its_first_expiry(
    writer: Writer, reader: DirectReader, clock: Clock
) -> None:
    writer.send("set", "long", value=1, expiry=NOW_MS + 5_000)
    writer.send("set", "short", value=2, expiry=NOW_MS + 1_000)
    receipt = _receipt(reader, "long", "short")
    clock.now += 999
    assert reader.vouches(receipt)
    clock.now += 1
    assert not reader.vouches(receipt)


def test_a_receipt_with_a_miss_vouches_for_nothing(writer: Writer, reader: DirectReader) -> None:
    writer.send("set", "a", value=1)
    receipt = _receipt(reader, "a", "nothing")
    assert not receipt.complete and not reader.vouches(receipt)


def test_the_stamps_file_is_counted_as_documented(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    stamps = Stamps(path)
    view = StampReader.open(path)
    assert view is not None
    try:
        assert path.stat().st_size == 8 * SLOTS
        assert view.slots[0] == 1  # every start counts in the epoch
        stamps.touch([b"a", b"a", b"b"])
        assert view.slots[slot_of(b"a")] == 2 and view.slots[slot_of(b"b")] == 1
        stamps.bump_epoch()
        assert view.slots[0] == 2
        assert all(1 <= slot_of(bytes([i])) < SLOTS for i in range(256))
    finally:
        view.close()
        stamps.close()
    (tmp_path / "short").write_bytes(b"\0" * 8)
    assert StampReader.open(tmp_path / "short") is None
    assert StampReader.open(tmp_path / "absent") is None
