"""The catalog's hot reads: on SQLite a connection of the process's own, outside the pool."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from sleigh.webapp.db import create_engine, reads, schema
from sleigh.webapp.db.reads import rows
from sleigh.webapp.models import queries
from tests.plugins.database import make_db_config

inv = schema.inventory.c
p = schema.products.c
STOCK = sa.select(inv.product_id, inv.on_hand).where(
    inv.product_id.in_(sa.bindparam("ids", expanding=True))
)


async def _through_engine(engine: AsyncEngine, statement: Any, params: dict[str, Any]) -> list[Any]:
    async with engine.connect() as conn:
        return [tuple(row) for row in await conn.execute(statement, params)]


@pytest.mark.parametrize(
    ("statement", "params"),
    [
        (queries._INFOS, {"ids": [1, 2, 3, 10_000]}),
        (queries._PRICES, {"ids": [4]}),
        (queries._DESCRIPTIONS, {"ids": [5, 6]}),
        (queries._STOCK, {"ids": [7, 8, 9]}),
        (queries._RELATED, {"id": 3, "limit": 6}),
    ],
    ids=["infos", "prices", "descriptions", "stock", "related"],
)
async def test_the_rows_are_those_the_engine_reads(
    demo_engine: AsyncEngine, statement: Any, params: dict[str, Any]
) -> None:
    expected = await _through_engine(demo_engine, statement, params)
    assert expected  # (the demo catalog has these products)
    assert [tuple(row) for row in await rows(demo_engine, statement, params)] == expected


async def test_lists_of_any_length_share_one_statement(demo_engine: AsyncEngine) -> None:
    for ids in ([1], [1, 2, 3], list(range(1, 50)), [2]):
        got = await rows(demo_engine, STOCK, {"ids": ids})
        assert sorted(row[0] for row in got) == ids


async def test_lists_and_single_values_bind_in_their_places(demo_engine: AsyncEngine) -> None:
    statement = (
        sa.select(p.id, p.price_cents)
        .where(
            p.price_cents >= sa.bindparam("floor"),
            p.id.in_(sa.bindparam("ids", expanding=True)),
            p.category_id != sa.bindparam("not_in"),
        )
        .order_by(p.id)
        .limit(sa.bindparam("n", type_=sa.Integer))
    )
    for params in (
        {"floor": 0, "ids": [1, 2, 3, 4], "not_in": -1, "n": 3},
        {"floor": 2000, "ids": list(range(1, 60)), "not_in": 2, "n": 10},
        {"not_in": 1, "n": 50, "floor": 500, "ids": list(range(10, 70))},  # (another order)
        {"floor": 0, "ids": [7], "not_in": -1, "n": 1},
    ):
        expected = await _through_engine(demo_engine, statement, params)
        assert [tuple(row) for row in await rows(demo_engine, statement, params)] == expected


async def test_statements_built_for_each_call_are_not_kept_without_end(
    demo_engine: AsyncEngine,
) -> None:
    for n in range(reads.STATEMENTS_KEPT + 50):
        statement = sa.select(p.id).where(p.id == n % 50 + 1)  # (a new statement each time)
        assert [tuple(r) for r in await rows(demo_engine, statement, {})] == [(n % 50 + 1,)]
    reader = reads._readers[demo_engine.sync_engine]
    assert len(reader._compiled) <= reads.STATEMENTS_KEPT
    assert len(reader._expanded) <= reads.STATEMENTS_KEPT


async def test_every_read_sees_the_last_commit(demo_engine: AsyncEngine) -> None:
    for on_hand in (5, 0, 7):
        async with demo_engine.begin() as conn:
            await conn.execute(
                sa.update(schema.inventory).where(inv.product_id == 1).values(on_hand=on_hand)
            )
        assert [tuple(r) for r in await rows(demo_engine, STOCK, {"ids": [1]})] == [(1, on_hand)]


async def test_reads_check_out_no_connection_of_the_engines_pool(demo_engine: AsyncEngine) -> None:
    checkouts: list[object] = []
    event.listen(demo_engine.sync_engine.pool, "checkout", lambda *args: checkouts.append(args))
    for ids in ([1, 2], [3], list(range(1, 40))):
        assert len(await rows(demo_engine, STOCK, {"ids": ids})) == len(ids)
    assert checkouts == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_sqlite_reads_run_in_the_loop_thread(demo_engine: AsyncEngine) -> None:
    here = threading.get_ident()
    thread = sa.select(sa.func.thread_ident())
    sqlite3_connect = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection: sqlite3.Connection = sqlite3_connect(*args, **kwargs)
        connection.create_function("thread_ident", 0, threading.get_ident)
        return connection

    mp = pytest.MonkeyPatch()
    mp.setattr(sqlite3, "connect", connect)
    try:
        await demo_engine.dispose()  # (the reader's connection is opened again, with the function)
        assert [tuple(r) for r in await rows(demo_engine, thread, {})] == [(here,)]
    finally:
        mp.undo()


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_disposing_the_engine_closes_the_postgres_readers_connections(
    demo_engine: AsyncEngine,
) -> None:
    async def connections() -> int:
        admin = await asyncpg.connect(
            **dict(demo_engine.dialect.create_connect_args(demo_engine.url)[1])
        )
        try:
            n = await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return int(n)
        finally:
            await admin.close()

    await demo_engine.dispose()
    assert await connections() == 0
    await asyncio.gather(*(rows(demo_engine, STOCK, {"ids": [i]}) for i in range(1, 30)))
    assert 1 <= await connections() <= make_db_config("").read_connections
    await demo_engine.dispose()
    assert await connections() == 0
    assert [
        tuple(r) for r in await rows(demo_engine, STOCK, {"ids": [1]})
    ] == await _through_engine(demo_engine, STOCK, {"ids": [1]})


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_the_postgres_reader_prepares_as_the_engine_is_told(
    demo_engine: AsyncEngine, db_url: str, tmp_path: Path
) -> None:
    """``statement_cache_size = 0`` (a pooler in transaction mode) keeps no named
    prepared statement on the reader's connections either."""
    prepared = sa.select(sa.func.count()).select_from(sa.table("pg_prepared_statements"))
    uncached = create_engine(make_db_config(db_url, statement_cache_size=0), tmp_path)
    try:
        for ids in ([1], [1, 2], [3]):
            assert len(await rows(uncached, STOCK, {"ids": ids})) == len(ids)
        assert [tuple(r) for r in await rows(uncached, prepared, {})] == [(0,)]
    finally:
        await uncached.dispose()
    await rows(demo_engine, STOCK, {"ids": [1]})
    [(kept,)] = [tuple(r) for r in await rows(demo_engine, prepared, {})]
    assert kept >= 1


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_postgres_read_connection_goes_back_to_its_pool_without_a_reset_query(
    demo_engine: AsyncEngine,
) -> None:
    """A read leaves no session state (no lock, cursor, LISTEN or SET): the reader's
    connection is not sent asyncpg's reset query when it is given back, which would cost
    a round trip for every read. The server shows each connection's last statement."""
    await demo_engine.dispose()
    marker = sa.select(inv.product_id, sa.literal_column("'sleigh-read-marker'")).where(
        inv.product_id == sa.bindparam("id")
    )
    assert [tuple(r) for r in await rows(demo_engine, marker, {"id": 1})] == [
        (1, "sleigh-read-marker")
    ]
    admin = await asyncpg.connect(
        **dict(demo_engine.dialect.create_connect_args(demo_engine.url)[1])
    )
    try:
        last = await admin.fetch(
            "SELECT query FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    assert [row["query"] for row in last if "sleigh-read-marker" in row["query"]], last
    assert not any("RESET ALL" in row["query"] for row in last), last


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_sqlite_reader_refuses_writes(demo_engine: AsyncEngine) -> None:
    before = await _through_engine(demo_engine, STOCK, {"ids": [1]})
    write = sa.update(schema.inventory).where(inv.product_id == 1).values(on_hand=999)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await rows(demo_engine, write, {})
    assert await _through_engine(demo_engine, STOCK, {"ids": [1]}) == before


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_disposed_engine_closes_the_reader_and_reads_again_after(
    demo_engine: AsyncEngine,
) -> None:
    first = await rows(demo_engine, STOCK, {"ids": [1]})
    await demo_engine.dispose()
    assert await rows(demo_engine, STOCK, {"ids": [1]}) == first


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_forked_process_reads_on_a_connection_of_its_own(demo_engine: AsyncEngine) -> None:
    expected = [tuple(r) for r in await rows(demo_engine, STOCK, {"ids": [1, 2]})]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a read on the parent's connection would share its locks
        code = 1
        try:
            got = asyncio.new_event_loop().run_until_complete(
                rows(demo_engine, STOCK, {"ids": [1, 2]})
            )
            os.write(write, repr([tuple(r) for r in got]).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as answer:
        said = answer.read().decode()
    _, status = await asyncio.to_thread(os.waitpid, pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert said == repr(expected)
    assert [tuple(r) for r in await rows(demo_engine, STOCK, {"ids": [1, 2]})] == expected
