"""The database layer: SQLAlchemy Core (async) on SQLite or PostgreSQL, Alembic migrations.

- :mod:`.engine`: :func:`create_engine`, :func:`database_url`, :func:`redacted`
- :mod:`.schema`: the tables (``metadata``)
- :mod:`.reads`: :func:`~.reads.rows`, the catalog's hot reads (on SQLite outside the pool)
- :mod:`.migrate`: :func:`upgrade`, :func:`downgrade`, :func:`current_revision`
- :mod:`.passwords`: argon2 :func:`hash_password` / :func:`verify_password`
"""

from __future__ import annotations

from .config import DatabaseConfig
from .engine import create_engine, database_url, redacted
from .errors import DatabaseError, DatabaseURLError, MigrationError
from .migrate import current_revision, downgrade, head_revision, upgrade

__all__ = [
    "DatabaseConfig",
    "DatabaseError",
    "DatabaseURLError",
    "MigrationError",
    "create_engine",
    "current_revision",
    "database_url",
    "downgrade",
    "head_revision",
    "redacted",
    "upgrade",
]
