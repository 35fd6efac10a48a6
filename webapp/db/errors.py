"""The database layer's exceptions: one root, typed subclasses."""

from __future__ import annotations

from ...errors import SleighError

__all__ = ["DatabaseError", "DatabaseURLError", "MigrationError"]


class DatabaseError(SleighError):
    """Root of the errors raised on purpose by :mod:`sleigh.webapp.db`."""


class DatabaseURLError(DatabaseError):
    """``database.url`` is malformed or names a driver sleigh does not support."""


class MigrationError(DatabaseError):
    """The schema could not be migrated (unknown revision, migrations run the wrong way)."""
