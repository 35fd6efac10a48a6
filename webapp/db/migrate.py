"""Schema migrations: Alembic, driven from code (no ``alembic.ini``).

The scripts live in ``migrations/`` beside this module, so an installed
package finds them. Every function runs Alembic on one connection of the
given engine inside one transaction: on PostgreSQL (and SQLite) a failed
migration leaves the schema as it was.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from .errors import MigrationError

__all__ = ["MIGRATIONS", "current_revision", "downgrade", "head_revision", "upgrade"]

log = logging.getLogger("sleigh.db")

#: The Alembic script directory (``env.py``, ``versions/``).
MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic :class:`~alembic.config.Config` for our scripts, bound to *connection*."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest revision the scripts define."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise MigrationError(f"no migration scripts under {MIGRATIONS}")
    return head


def _run(connection: Connection, action: str, revision: str) -> None:
    cfg = alembic_config(connection)
    func: Any = command.upgrade if action == "upgrade" else command.downgrade
    try:
        func(cfg, revision)
    except CommandError as exc:
        raise MigrationError(f"cannot {action} the database to {revision!r}: {exc}") from None


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate the database up to *revision*; a database already there is left alone.

    :raises MigrationError: if *revision* is unknown.
    """
    async with engine.begin() as conn:
        await conn.run_sync(_run, "upgrade", revision)
    log.info("database schema upgraded to %s", revision)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    """Migrate the database down to *revision* (``"base"``: drop every table).

    :raises MigrationError: if *revision* is unknown.
    """
    async with engine.begin() as conn:
        await conn.run_sync(_run, "downgrade", revision)
    log.info("database schema downgraded to %s", revision)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at; ``None`` for a database never migrated."""
    async with engine.connect() as conn:
        return await conn.run_sync(_current)
