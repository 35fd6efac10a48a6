"""Alembic environment: runs on the connection :mod:`sleigh.webapp.db.migrate` hands over.

Alembic loads this file by path, not as part of the package, hence the absolute import.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from sleigh.webapp.db.schema import metadata


def run_migrations(connection: Connection) -> None:
    """Run the pending migrations on *connection* (SQLite uses batch mode for ALTERs)."""
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if not isinstance(_connection, Connection):
    raise RuntimeError(
        "run migrations through sleigh.webapp.db.migrate (it hands Alembic a connection);"
        " offline SQL generation is not supported"
    )
run_migrations(_connection)
