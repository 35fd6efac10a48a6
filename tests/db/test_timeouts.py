"""The web tier's statement timeout on PostgreSQL (``database.query_timeout``): the
server cancels a statement that runs longer, through the engine and through the
catalog's own read connections; tools run without it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from sleigh.daemons.control.settings import load_settings
from sleigh.webapp.db import reads
from sleigh.webapp.db.engine import create_engine
from sleigh.webapp.service import Parts
from tests.plugins.database import admin_connection, make_db_config

pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("db_url", ["postgres"], indirect=True)]

SLOW = "pg_sleep(30)"


@pytest_asyncio.fixture
async def limited(db_url: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine whose statements the server cancels after 0.2 s."""
    engine = create_engine(make_db_config(db_url), tmp_path, query_timeout=0.2)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _setting(engine: AsyncEngine) -> str:
    async with engine.connect() as conn:
        return str((await conn.execute(text("SHOW statement_timeout"))).scalar_one())


async def _still_sleeping() -> int:
    """Statements of :data:`SLOW` the server is running now (other than this count)."""
    admin = await admin_connection()
    try:
        found = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1"
            " AND pid <> pg_backend_pid()",
            f"%{SLOW}%",
        )
        return int(found)
    finally:
        await admin.close()


async def test_the_engine_s_statements_are_cancelled_by_the_server(limited: AsyncEngine) -> None:
    assert await _setting(limited) == "200ms"
    with pytest.raises(DBAPIError, match="statement timeout"):
        async with limited.connect() as conn:
            await conn.execute(text(f"SELECT {SLOW}"))
    assert await _still_sleeping() == 0
    async with limited.connect() as conn:  # (the pool goes on)
        assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1


async def test_the_catalog_s_reads_are_cancelled_by_the_server(limited: AsyncEngine) -> None:
    with pytest.raises(asyncpg.QueryCanceledError, match="statement timeout"):
        await reads.rows(limited, select(func.pg_sleep(30)), {})
    assert await _still_sleeping() == 0
    connections = reads.read_connections(limited)
    assert connections is not None and connections.retries == 0  # (not run again)
    assert [tuple(r) for r in await reads.rows(limited, select(func.abs(-4)), {})] == [(4,)]


async def test_without_a_query_timeout_statements_run_to_their_end(
    db_url: str, tmp_path: Path
) -> None:
    engine = create_engine(make_db_config(db_url), tmp_path)
    try:
        assert await _setting(engine) == "0"
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_sleep(0.3)"))
    finally:
        await engine.dispose()


async def test_the_web_tier_takes_database_query_timeout(db_url: str, tmp_path: Path) -> None:
    environ = {"SLEIGH_DATABASE_URL": db_url, "SLEIGH_DATABASE_QUERY_TIMEOUT": "250ms"}
    parts = Parts.open(load_settings(None, environ, home=tmp_path))
    try:
        assert await _setting(parts.engine) == "250ms"
    finally:
        await parts.close()
