"""The PostgreSQL read connections of a process (``webapp/db/connections.py``), against
the real server: reuse, the limit, waiting, and connections that fail or are closed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy.engine import make_url

from sleigh.webapp.db.connections import ReadConnections
from tests.plugins.database import end_backend

Make = Callable[..., ReadConnections]

pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("db_url", ["postgres"], indirect=True)]


@pytest.fixture
def connect(db_url: str) -> dict[str, Any]:
    url = make_url(db_url)
    return {"host": url.host, "port": url.port, "user": url.username, "database": url.database}


@pytest_asyncio.fixture
async def admin(connect: dict[str, Any]) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(**connect)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
def make(connect: dict[str, Any]) -> Iterator[Make]:
    """Read connections of *size* that wait *wait* s, made for the test (closed after)."""
    made: list[ReadConnections] = []

    def new(size: int, wait: float, **options: Any) -> ReadConnections:
        made.append(ReadConnections(connect, size, wait, **options))
        return made[-1]

    yield new
    for reads in made:
        reads.close()


async def _backends(admin: asyncpg.Connection) -> list[int]:
    """The other connections to the test database, by server process id."""
    found = await admin.fetch(
        "SELECT pid FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    return sorted(row["pid"] for row in found)


async def _settled(admin: asyncpg.Connection, count: int) -> list[int]:
    """The other connections, once there are *count* of them (a closed connection's
    server process takes a moment to go), or as they are after a second."""
    for _ in range(50):
        found = await _backends(admin)
        if len(found) == count:
            break
        await asyncio.sleep(0.02)
    return found


async def _pid(reads: ReadConnections) -> int:
    [(pid,)] = await reads.fetch("SELECT pg_backend_pid()", ())
    return int(pid)


def _end_unheard(pids: list[int]) -> None:
    """End the server processes *pids* while this thread's event loop is kept from
    running (the ending runs in a thread of its own, with its own loop): the
    connections do not know they are closed until they are next used."""

    def end() -> None:
        async def each() -> None:
            for pid in pids:
                await end_backend(pid)

        asyncio.run(each())

    thread = threading.Thread(target=end)
    thread.start()
    thread.join(30)


async def test_a_connection_is_reused_and_never_more_than_size_are_open(
    make: Make, admin: asyncpg.Connection
) -> None:
    reads = make(3, 10)
    assert await _pid(reads) == await _pid(reads)
    for wave in (1, 7, 40, 2):
        got = await asyncio.gather(*(reads.fetch("SELECT $1::int * 2", (i,)) for i in range(wave)))
        assert [row[0][0] for row in got] == [i * 2 for i in range(wave)]
        assert reads.open <= 3
        assert len(await _backends(admin)) == reads.open
    assert reads.open == 3
    reads.close()
    assert await _settled(admin, 0) == []


async def test_a_read_waits_for_a_connection_and_gives_up_after_wait(
    make: Make, admin: asyncpg.Connection
) -> None:
    reads = make(1, 0.2)
    slow = asyncio.ensure_future(reads.fetch("SELECT pg_sleep(0.6)", ()))
    await asyncio.sleep(0.1)
    with pytest.raises(TimeoutError, match=r"within 0.2s .*database.read_connections"):
        await reads.fetch("SELECT 1", ())
    assert (reads.waits, reads.timeouts) == (1, 1)
    reads.wait = 5
    queued = asyncio.ensure_future(reads.fetch("SELECT 2", ()))
    await slow
    assert [tuple(r) for r in await queued] == [(2,)]  # (waited, then took it)
    assert (reads.waits, reads.timeouts) == (2, 1)
    assert reads.open == 1 and len(await _backends(admin)) == 1


async def test_a_failed_read_closes_its_connection_and_the_next_opens_one(
    make: Make, admin: asyncpg.Connection
) -> None:
    reads = make(2, 10)
    first = await _pid(reads)
    with pytest.raises(asyncpg.PostgresError):
        await reads.fetch("SELECT 1 / 0", ())
    assert reads.retries == 0  # (a read that is wrong is not run again)
    assert reads.open == 0
    assert first not in await _settled(admin, 0)
    assert await _pid(reads) != first


async def test_a_cancelled_read_closes_its_connection(
    make: Make, admin: asyncpg.Connection
) -> None:
    reads = make(1, 10)
    first = await _pid(reads)
    slow = asyncio.ensure_future(reads.fetch("SELECT pg_sleep(5)", ()))
    await asyncio.sleep(0.2)
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    assert reads.open == 0
    assert await _pid(reads) != first


async def test_a_connection_the_server_closed_while_idle_is_replaced(
    make: Make, admin: asyncpg.Connection
) -> None:
    reads = make(1, 10)
    first = await _pid(reads)
    await end_backend(first)
    assert await _settled(admin, 0) == []
    assert await _pid(reads) != first
    assert reads.open == 1


async def test_closing_closes_idle_connections_now_and_busy_ones_on_their_return(
    make: Make, admin: asyncpg.Connection
) -> None:
    reads = make(2, 10)
    await asyncio.gather(*(reads.fetch("SELECT pg_sleep(0.1)", ()) for _ in range(2)))
    slow = asyncio.ensure_future(reads.fetch("SELECT pg_sleep(0.5)", ()))
    await asyncio.sleep(0.2)
    reads.close()
    assert len(await _settled(admin, 1)) == 1  # the idle one went at once
    await slow
    assert await _settled(admin, 0) == []
    assert reads.open == 0
    assert [tuple(r) for r in await reads.fetch("SELECT 3", ())] == [(3,)]
    assert reads.open == 1


async def test_a_read_whose_connection_was_lost_unnoticed_runs_again_on_a_new_one(
    make: Make, admin: asyncpg.Connection
) -> None:
    reads = make(2, 10)
    await asyncio.gather(*(reads.fetch("SELECT pg_sleep(0.05)", ()) for _ in range(2)))
    before = await _settled(admin, 2)
    _end_unheard(before)  # (as a server restart ends every connection)
    assert [tuple(r) for r in await reads.fetch("SELECT 5", ())] == [(5,)]
    assert reads.retries == 1
    assert reads.open == 1  # the other idle connection was closed too, not kept
    after = await _settled(admin, 1)
    assert len(after) == 1 and not set(after) & set(before)
    assert [tuple(r) for r in await reads.fetch("SELECT 6", ())] == [(6,)]
    assert reads.retries == 1


async def test_an_idle_connection_is_closed_once_past_its_lifetime(
    make: Make, admin: asyncpg.Connection
) -> None:
    now = [100.0]
    reads = make(2, 10, idle=60, clock=lambda: now[0])
    first = await _pid(reads)
    now[0] += 59
    assert await _pid(reads) == first  # (idle 59 s: kept)
    now[0] += 61
    second = await _pid(reads)
    assert second != first
    assert reads.open == 1
    assert await _settled(admin, 1) == [second]
