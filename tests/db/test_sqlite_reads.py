"""SQLite reads run in the event loop's thread; writes, which may wait for a lock, do not."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from sleigh.webapp.db.engine import create_engine
from sleigh.webapp.db.sqlite import reads_at_once
from tests.plugins.database import make_db_config


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh SQLite file with a table ``t`` and a function ``thread()``
    that answers the ident of the thread that runs it."""
    engine = create_engine(make_db_config(""), tmp_path)

    def add_function(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.create_function("thread", 0, threading.get_ident)

    event.listen(engine.sync_engine, "connect", add_function)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (n INTEGER)"))
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_a_select_runs_in_the_loop_thread_and_a_write_in_another(
    sqlite_engine: AsyncEngine,
) -> None:
    loop_thread = threading.get_ident()
    async with sqlite_engine.begin() as conn:
        await conn.execute(text("INSERT INTO t (n) VALUES (thread())"))
    async with sqlite_engine.connect() as conn:
        assert (await conn.execute(text("SELECT thread()"))).scalar_one() == loop_thread
        written = (await conn.execute(text("SELECT n FROM t"))).scalar_one()
    assert written != loop_thread


async def test_a_write_waiting_for_a_lock_leaves_the_loop_free(
    sqlite_engine: AsyncEngine, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "sleigh.db", isolation_level=None)  # another process's
    other.execute("BEGIN IMMEDIATE")  # holds the write lock
    try:

        async def write() -> None:
            async with sqlite_engine.begin() as conn:
                await conn.execute(text("INSERT INTO t (n) VALUES (1)"))

        writing = asyncio.create_task(write())
        started = time.perf_counter()
        for _ in range(10):
            await asyncio.sleep(0.01)
        assert time.perf_counter() - started < 0.5  # the loop went on while the write waited
        assert not writing.done()
        async with sqlite_engine.connect() as conn:  # and reads are answered meanwhile
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0
    finally:
        other.execute("COMMIT")
        other.close()
    await asyncio.wait_for(writing, 10)
    async with sqlite_engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 1


def test_what_runs_at_once(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level="DEFERRED")
    try:
        cursor = conn.cursor()
        cursor.execute("CREATE TABLE t (n INTEGER)")
        cursor.execute("INSERT INTO t VALUES (1)")  # a transaction is open: commit has work
        at_once: list[tuple[Callable[..., Any], tuple[Any, ...]]] = [
            (conn.cursor, ()),
            (cursor.execute, ("  select n from t",)),
            (cursor.fetchall, ()),
            (cursor.fetchone, ()),
            (cursor.close, ()),
        ]
        in_thread: list[tuple[Callable[..., Any], tuple[Any, ...]]] = [
            (cursor.execute, ("INSERT INTO t VALUES (2)",)),
            (cursor.execute, ("WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x",)),
            (cursor.execute, ("PRAGMA journal_mode=WAL",)),
            (cursor.executemany, ("SELECT ?", [(1,)])),
            (conn.commit, ()),
            (conn.rollback, ()),
            (conn.close, ()),
            (print, ("not sqlite's",)),
        ]
        assert all(reads_at_once(fn, args) for fn, args in at_once)
        assert not any(reads_at_once(fn, args) for fn, args in in_thread)
        conn.commit()
        assert reads_at_once(conn.commit, ()) and reads_at_once(conn.rollback, ())
    finally:
        conn.close()
