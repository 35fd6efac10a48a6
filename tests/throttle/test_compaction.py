"""A compaction writes its snapshot in a worker thread while checks go on; replay of the
new log gives every key's latest state; a rules reload meanwhile is named after it."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from sleigh.daemons.control.settings import load_settings
from sleigh.daemons.throttle import logfile, service
from sleigh.daemons.throttle.gcra import Table
from sleigh.daemons.throttle.handlers import Context
from sleigh.daemons.throttle.logfile import LogWriter, live_states, open_log, read_header
from sleigh.daemons.throttle.rules import Rule, rules_hash

RULES = {"ip": Rule("ip", 60 * 10**9, 5)}  # one a minute: nothing expires during a test


def _context(path: Path) -> Context:
    states = open_log(path, rules_hash(RULES))
    writer = LogWriter(path)
    table = Table(RULES, writer.append)
    table.states = states
    return Context(table, writer, dict(RULES), "")


def is_compacting(ctx: Context) -> bool:
    return ctx.compacting


def _held(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Make the snapshot's thread wait for the returned event (a slow disk, here)."""
    release = threading.Event()
    write = logfile.write_beside

    def slow(path: Path, data: bytes) -> Path:
        release.wait(10)
        return write(path, data)

    monkeypatch.setattr(service, "write_beside", slow)
    return release


async def test_checks_go_on_and_nothing_is_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.log"
    ctx = _context(path)
    now = time.time_ns()
    for i in range(300):
        ctx.table.check([b"ip:%d" % i], [1], now)
    release = _held(monkeypatch)
    compacting = asyncio.ensure_future(service.compact_aside(ctx))
    await asyncio.sleep(0.05)
    assert is_compacting(ctx)
    for i in range(250, 400):  # answered while the snapshot is being written
        assert ctx.table.check([b"ip:%d" % i], [2], now).allowed
    ctx.writer.flush()
    assert not compacting.done()
    release.set()
    await compacting
    assert not is_compacting(ctx)
    ctx.table.check([b"ip:0"], [1], now)  # the new writer takes records
    ctx.writer.close()
    assert live_states(path, now) == ctx.table.states  # every key's latest state
    assert len(ctx.table.states) == 400
    assert path.with_name("state.log.1").exists()


async def test_a_rules_reload_meanwhile_is_named_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.log"
    ctx = _context(path)
    ctx.table.check([b"ip:a"], [1], time.time_ns())
    release = _held(monkeypatch)
    compacting = asyncio.ensure_future(service.compact_aside(ctx))
    await asyncio.sleep(0.05)
    rules = tmp_path / "rules.toml"
    rules.write_text('[rules.ip]\nrate = 7\nper = "1s"\nburst = 7\n')
    settings = load_settings(None, {"SLEIGH_THROTTLE_RULES": str(rules)}, home=tmp_path)
    service.reload_rules(ctx, settings)  # no compaction of its own while one is under way
    assert read_header(path).rules_hash == rules_hash(RULES)
    release.set()
    await compacting
    assert read_header(path).rules_hash == rules_hash(ctx.rules) != rules_hash(RULES)
    ctx.writer.close()


async def test_the_sweep_goes_a_chunk_a_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "SWEEP_CHUNK", 100)
    table = Table({"ip": Rule("ip", 10**6, 1), "session": Rule("session", 60 * 10**9, 5)}, None)
    now = time.time_ns()
    for i in range(250):
        table.check([b"ip:%d" % i], [1], now - 10**9)  # expired a second ago
        table.check([b"session:%d" % i], [1], now)
    turns = 0

    async def count() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1

    counter = asyncio.ensure_future(count())
    assert await service.sweep(table) == 250
    counter.cancel()
    assert set(table.states) == {b"session:%d" % i for i in range(250)}
    assert turns >= 4  # 500 keys, 100 a turn: the loop ran between the chunks
