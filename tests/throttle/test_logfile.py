"""The state log: replay keeps live states, drops expired ones and compacts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sleigh.core_ext import replay
from sleigh.daemons.throttle import logfile
from sleigh.daemons.throttle.errors import LogError
from sleigh.daemons.throttle.gcra import Table
from sleigh.daemons.throttle.logfile import (
    HEADER,
    RECORD,
    LogWriter,
    iter_events,
    open_log,
    read_header,
)
from sleigh.daemons.throttle.rules import Rule, rules_hash


@pytest.fixture(autouse=True, params=["python", "native"])
def replay_impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test here runs with the numpy twin and with the compiled replay."""
    if request.param == "native":
        if not replay.NATIVE:
            pytest.skip("compiled replay not built")
        monkeypatch.setattr(logfile, "last_alive", replay.last_alive_native)
    else:
        monkeypatch.setattr(logfile, "last_alive", replay.last_alive_python)


RULES = {"ip": Rule("ip", 1000, 2), "login": Rule("login", 10**6, 1)}
HASH = rules_hash(RULES)


def _table(path: Path, now: int) -> tuple[Table, LogWriter]:
    states = open_log(path, HASH, now)
    writer = LogWriter(path)
    table = Table(RULES, writer.append)
    table.states = states
    return table, writer


def test_replay_restores_every_live_limit(tmp_path: Path) -> None:
    path = tmp_path / "state.log"
    table, writer = _table(path, 0)
    table.check([b"ip:a"], [1], 100)
    table.check([b"ip:a"], [1], 100)
    table.check([b"login:a"], [1], 100)
    table.check([b"login:a"], [1], 100)  # denied
    writer.flush()
    before = {k: list(v) for k, v in table.states.items()}
    os.close(writer.fd)  # no sync, no close: as after kill -9
    again, writer2 = _table(path, 200)
    assert again.states == before
    assert not again.check([b"ip:a"], [1], 200).allowed
    writer2.close()


def test_replay_drops_expired_states_and_compacts(tmp_path: Path) -> None:
    path = tmp_path / "state.log"
    table, writer = _table(path, 0)
    for i in range(50):
        table.check([f"ip:{i}".encode()], [1], 0)
    table.check([b"login:x"], [1], 0)
    writer.close()
    assert path.stat().st_size == HEADER.size + 51 * RECORD.size
    states = open_log(path, HASH, 5000)  # every ip state ended at 1000
    assert list(states) == [b"login:x"]
    assert path.stat().st_size == HEADER.size + RECORD.size
    assert (tmp_path / "state.log.1").exists()


def test_a_reset_survives_replay(tmp_path: Path) -> None:
    path = tmp_path / "state.log"
    table, writer = _table(path, 0)
    table.check([b"login:a"], [1], 0)
    table.reset(b"login:a", 10)
    table.check([b"ip:b"], [1], 10)
    writer.close()
    assert list(open_log(path, HASH, 20)) == [b"ip:b"]


def test_a_torn_last_record_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "state.log"
    table, writer = _table(path, 0)
    table.check([b"login:a"], [1], 0)
    writer.close()
    with path.open("ab") as fh:
        fh.write(b"\x01" * (RECORD.size // 2))
    assert list(open_log(path, HASH, 1)) == [b"login:a"]


def test_the_header_names_the_rules(tmp_path: Path) -> None:
    path = tmp_path / "state.log"
    open_log(path, HASH, 0)
    assert read_header(path).rules_hash == HASH


def test_not_a_log_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.log"
    path.write_bytes(b"hello" * 100)
    with pytest.raises(LogError, match="not a throttle log"):
        open_log(path, HASH, 0)


def test_events_since(tmp_path: Path) -> None:
    path = tmp_path / "state.log"
    table, writer = _table(path, 0)
    table.check([b"ip:a"], [1], 10)
    table.check([b"ip:b"], [1], 20)
    writer.close()
    assert [(key, now) for _, key, now, _ in iter_events(path, 15)] == [(b"ip:b", 20)]


async def test_the_loop_answers_while_the_log_syncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow disk (fdatasync made slow here: this machine's is quick) holds up no check."""
    import asyncio
    import threading
    import time

    synced: list[int] = []
    release = threading.Event()
    fdatasync = os.fdatasync

    def slow_fdatasync(fd: int) -> None:
        release.wait(5)
        fdatasync(fd)
        synced.append(os.fstat(fd).st_size)

    monkeypatch.setattr(os, "fdatasync", slow_fdatasync)
    path = tmp_path / "state.log"
    table, writer = _table(path, 0)
    table.check([b"ip:a"], [1], 100)
    syncing = asyncio.ensure_future(writer.sync_aside())
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    assert table.check([b"ip:b"], [1], 100).allowed  # answered while the sync waits
    writer.flush()
    assert time.perf_counter() - started < 1 and not syncing.done()
    release.set()
    await syncing
    dirty = [writer.dirty]
    await writer.sync_aside()
    dirty.append(writer.dirty)
    assert dirty == [True, False]  # ip:b came after the first sync began: the next took it
    assert synced == [synced[0], writer.size]
    writer.close()
    again, closing = _table(path, 200)
    assert set(again.states) == {b"ip:a", b"ip:b"}
    closing.close()


def test_records_no_writer_writes_are_left_out_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.log"
    table, writer = _table(path, 0)
    table.check([b"login:a"], [1], 0)
    table.check([b"login:b"], [1], 0)
    writer.close()
    raw = bytearray(path.read_bytes())
    second = HEADER.size + RECORD.size  # login:b's record
    raw[second + 45] = 200  # its key length, past any key
    raw += bytes([0x5A]) * RECORD.size  # and a stray record of noise
    path.write_bytes(bytes(raw))
    assert list(open_log(path, HASH, 1)) == [b"login:a"]
    assert "2 records are not ones a writer writes" in caplog.text
    assert list(open_log(path, HASH, 2)) == [b"login:a"]  # compacted: nothing left to warn of
