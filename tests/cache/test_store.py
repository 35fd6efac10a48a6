"""The LMDB store: TTLs, conditional writes, sweeping, eviction, a broken file."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import lmdb
import pytest

from sleigh.daemons.cache.errors import StoreFull
from sleigh.daemons.cache.ops import Delete, Expire, Flush, Set, expiry_of
from sleigh.daemons.cache.store import Store
from sleigh.daemons.cache.writer import Writer


class Clock:
    def __init__(self) -> None:
        self.ms = 1_700_000_000_000

    def __call__(self) -> int:
        return self.ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Store:
    opened, moved = Store.open(
        tmp_path / "cache", map_size=8 * 1024**2, sync="none", clock_ms=clock
    )
    assert moved is None
    return opened


def read(store: Store, key: bytes) -> bytes | None:
    with store.reading() as view:
        value = view.get(key)
        return None if value is None else bytes(value)


def test_set_get_and_expiry(store: Store, clock: Clock) -> None:
    assert store.apply([Set(b"k", b"v", clock.ms + 1000), Set(b"forever", b"f", 0)]) == [True, True]
    assert read(store, b"k") == b"v"
    with store.reading() as view:
        assert view.pttl(b"k") == 1000
        assert view.pttl(b"forever") == -1
        assert view.pttl(b"missing") == -2
    clock.ms += 1000
    assert read(store, b"k") is None
    assert read(store, b"forever") == b"f"


def test_nx_xx_and_keepttl(store: Store, clock: Clock) -> None:
    assert store.apply([Set(b"k", b"1", clock.ms + 50, "xx")]) == [False]
    assert store.apply([Set(b"k", b"1", clock.ms + 50, "nx")]) == [True]
    assert store.apply([Set(b"k", b"2", 0, "nx")]) == [False]
    assert store.apply([Set(b"k", b"3", 0, "xx", keep_ttl=True)]) == [True]
    with store.reading() as view:
        assert bytes(view.get(b"k") or b"") == b"3"
        assert view.pttl(b"k") == 50
    clock.ms += 60
    # An expired key is absent: NX succeeds, XX fails.
    assert store.apply([Set(b"k", b"4", 0, "xx")]) == [False]
    assert store.apply([Set(b"k", b"5", 0, "nx")]) == [True]


def test_delete_expire_flush(store: Store, clock: Clock) -> None:
    store.apply([Set(b"a", b"1", 0), Set(b"b", b"2", clock.ms + 10), Set(b"c", b"3", 0)])
    clock.ms += 20
    assert store.apply([Delete((b"a", b"b", b"zz"))]) == [1]  # b had expired
    assert store.apply([Expire(b"c", clock.ms + 5000), Expire(b"nope", clock.ms + 1)]) == [
        True,
        False,
    ]
    with store.reading() as view:
        assert view.pttl(b"c") == 5000
    assert store.apply([Expire(b"c", clock.ms)]) == [True]  # due now: deleted
    assert read(store, b"c") is None
    store.apply([Set(b"x", b"1", 0)])
    assert store.apply([Flush()]) == [True]
    assert store.count() == 0


def test_sweep_removes_only_expired_in_small_batches(store: Store, clock: Clock) -> None:
    store.apply([Set(b"e%d" % i, b"x", clock.ms + 10) for i in range(25)])
    store.apply([Set(b"live%d" % i, b"x", clock.ms + 10_000) for i in range(5)])
    clock.ms += 11
    assert store.sweep(10) == 10
    assert store.sweep(100) == 15
    assert store.sweep(100) == 0
    assert store.count() == 5
    assert store.expirations == 25


def test_eviction_takes_soonest_to_expire_first(tmp_path: Path, clock: Clock) -> None:
    store, _ = Store.open(
        tmp_path / "small", map_size=1024**2, sync="none", clock_ms=clock, low_water=0.5
    )
    value = b"v" * 2000
    ttl_order = []
    for i in range(2000):
        key = b"k%05d" % i
        result = store.apply([Set(key, value, clock.ms + 1000 + (i % 400) * 10)])
        if isinstance(result[0], StoreFull):
            break
        ttl_order.append((clock.ms + 1000 + (i % 400) * 10, key))
    assert store.evictions > 0, "the map never filled"
    with store.reading() as view:
        survivors = [expires for expires, key in ttl_order if view.get(key) is not None]
        evicted = [expires for expires, key in ttl_order if view.get(key) is None]
    assert survivors and evicted
    assert max(evicted) <= min(survivors) + 10 * 400  # soonest first, batch granularity
    assert store.usage().fraction < 0.95


def test_value_too_big_for_the_map_is_refused_not_raised(tmp_path: Path, clock: Clock) -> None:
    store, _ = Store.open(tmp_path / "tiny", map_size=1024**2, sync="none", clock_ms=clock)
    results = store.apply([Set(b"small", b"s", 0), Set(b"huge", b"x" * 2 * 1024**2, 0)])
    assert results[0] is True
    assert isinstance(results[1], StoreFull)
    assert read(store, b"small") == b"s"


def test_scan_walks_every_live_key_once(store: Store, clock: Clock) -> None:
    store.apply([Set(b"user:%03d" % i, b"x", 0) for i in range(120)])
    store.apply([Set(b"other:%d" % i, b"x", 0) for i in range(30)])
    store.apply([Set(b"user:dead", b"x", clock.ms + 1)])
    clock.ms += 5
    seen: list[bytes] = []
    cursor = b""
    while True:
        cursor, keys = store.scan(cursor, 17, b"user:*")
        seen.extend(keys)
        if not cursor:
            break
    assert sorted(seen) == [b"user:%03d" % i for i in range(120)]


def test_broken_environment_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "cache"
    path.mkdir()
    (path / "data.mdb").write_bytes(os.urandom(64 * 1024))
    store, moved = Store.open(path, map_size=8 * 1024**2, sync="none")
    assert moved is not None and moved.exists()
    assert (moved / "data.mdb").exists()
    store.apply([Set(b"k", b"v", 0)])
    assert read(store, b"k") == b"v"
    store.close()


def test_other_format_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "cache"
    env = lmdb.open(str(path), max_dbs=4)
    with env.begin(write=True) as txn:
        txn.put(b"format", b"99", db=env.open_db(b"meta", txn=txn))
    env.close()
    store, moved = Store.open(path, map_size=8 * 1024**2, sync="none")
    assert moved is not None
    store.close()


def test_expiry_header_is_what_direct_readers_see(store: Store, clock: Clock) -> None:
    store.apply([Set(b"k", b"payload", clock.ms + 42)])
    with store.env.begin() as txn:
        raw = txn.get(b"k", db=store.data)
    assert raw is not None
    assert expiry_of(raw) == clock.ms + 42
    assert raw[8:] == b"payload"


async def test_writer_groups_concurrent_writes(store: Store) -> None:
    writer = Writer(store, asyncio.get_running_loop(), sweep_interval=60)
    writer.start()
    try:
        futures = [writer.submit(Set(b"k%d" % i, b"v", 0)) for i in range(2000)]
        results = await asyncio.gather(*futures)
    finally:
        await writer.close()
    assert results == [True] * 2000
    assert writer.writes == 2000
    assert writer.commits < 2000
    assert writer.largest_group > 1
    assert store.count() == 2000


async def test_writer_refuses_after_close(store: Store) -> None:
    writer = Writer(store, asyncio.get_running_loop())
    writer.start()
    await writer.close()
    result = await writer.submit(Set(b"k", b"v", 0))
    assert "shutting down" in str(result)


def test_unclean_stop_on_another_boot_starts_cold(tmp_path: Path) -> None:
    path = tmp_path / "cache"
    store, _ = Store.open(path, map_size=8 * 1024**2, sync="none")
    store.apply([Set(b"k", b"v", 0)])
    with store.env.begin(write=True, db=store.meta) as txn:
        txn.put(b"boot_id", b"a-boot-before-an-os-crash")
    store.env.close()  # no clean close: as if the OS died
    again, moved = Store.open(path, map_size=8 * 1024**2, sync="none")
    assert moved is not None
    assert read(again, b"k") is None
    again.close()


def test_clean_stop_or_process_crash_keeps_the_data(tmp_path: Path) -> None:
    path = tmp_path / "cache"
    store, _ = Store.open(path, map_size=8 * 1024**2, sync="none")
    store.apply([Set(b"k", b"v", 0)])
    store.env.close()  # a process crash: same boot, not clean
    again, moved = Store.open(path, map_size=8 * 1024**2, sync="none")
    assert moved is None and read(again, b"k") == b"v"
    with again.env.begin(write=True, db=again.meta) as txn:
        txn.put(b"boot_id", b"a-boot-before-a-clean-reboot")
    again.close()  # clean: the next boot keeps the data
    with lmdb.open(str(path), max_dbs=4) as env, env.begin(write=True) as txn:
        txn.put(b"boot_id", b"a-boot-before-a-clean-reboot", db=env.open_db(b"meta", txn=txn))
    third, moved = Store.open(path, map_size=8 * 1024**2, sync="none")
    assert moved is None and read(third, b"k") == b"v"
    third.close()


def _reader(path: Path) -> subprocess.Popen[str]:
    """A process that opens the environment, starts a read transaction and sleeps."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import lmdb, sys, time\n"
            "env = lmdb.open(sys.argv[1], readonly=True, max_dbs=4, lock=True)\n"
            "txn = env.begin()\n"
            "print('reading', flush=True)\n"
            "time.sleep(60)\n",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "reading\n"
    return proc


def test_stale_reader_slots_are_cleared_at_start(tmp_path: Path) -> None:
    path = tmp_path / "cache"
    store, _ = Store.open(path, map_size=8 * 1024**2, sync="none")
    store.apply([Set(b"k", b"v", 0)])
    store.close()
    alive, dead = _reader(path), _reader(path)  # a live reader keeps the lock table
    try:
        dead.kill()
        dead.wait(10)
        with lmdb.open(str(path), max_dbs=4) as env:
            assert f"{dead.pid:>10}" in env.readers()  # the dead reader's slot is left
        again, _ = Store.open(path, map_size=8 * 1024**2, sync="none")
        table = again.env.readers()
        assert f"{dead.pid:>10}" not in table and f"{alive.pid:>10}" in table
        again.close()
    finally:
        for proc in (alive, dead):
            proc.kill()
            proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()
