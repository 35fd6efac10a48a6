"""Migrations build exactly ``schema.metadata``, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from sleigh.webapp.db.config import DatabaseConfig
from sleigh.webapp.db.engine import create_engine
from sleigh.webapp.db.errors import MigrationError
from sleigh.webapp.db.migrate import (
    MIGRATIONS,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)
from sleigh.webapp.db.schema import metadata


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def diff(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return await conn.run_sync(_diff)


async def tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return await conn.run_sync(_tables)


def test_migrations_ship_beside_the_package() -> None:
    assert (MIGRATIONS / "env.py").is_file()
    assert list((MIGRATIONS / "versions").glob("0001_*.py"))
    assert head_revision() == "0001"


async def test_fresh_database_has_no_revision(db_config: DatabaseConfig, tmp_path: Path) -> None:
    engine = create_engine(db_config, tmp_path)
    try:
        assert await current_revision(engine) is None
        assert await diff(engine), "an empty database must differ from the schema"
    finally:
        await engine.dispose()


async def test_migrated_database_matches_metadata(engine: AsyncEngine) -> None:
    assert await current_revision(engine) == head_revision()
    assert await diff(engine) == []
    assert await tables(engine) == set(metadata.tables) | {"alembic_version"}


async def test_upgrade_twice_is_a_no_op(engine: AsyncEngine) -> None:
    await upgrade(engine)
    assert await current_revision(engine) == head_revision()
    assert await diff(engine) == []


async def test_downgrade_to_base_then_upgrade(engine: AsyncEngine) -> None:
    await downgrade(engine, "base")
    assert await current_revision(engine) is None
    assert await tables(engine) == {"alembic_version"}
    await upgrade(engine)
    assert await current_revision(engine) == head_revision()
    assert await diff(engine) == []


async def test_unknown_revision_is_a_migration_error(engine: AsyncEngine) -> None:
    with pytest.raises(MigrationError, match="nosuch"):
        await upgrade(engine, "nosuch")
    assert await current_revision(engine) == head_revision()
