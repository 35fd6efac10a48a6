"""Read-only statements the catalog runs most often, run the cheapest way the database allows.

A product page's parts expire every few seconds (stock) to hours (the
description), and each expiry is one short ``SELECT ... WHERE id IN (...)``.
Through SQLAlchemy's asyncio engine such a query checks a connection out of
the pool, runs in a greenlet, makes a result object and rolls back on return.
Measured on this project's two-core test machine against the demo catalog:
117 µs of CPU for one stock query when the worker is idle, 4.7 µs for the
same query on a plain ``sqlite3`` connection; under load the pooled path cost
about a tenth of a web worker's CPU on the warm product page.

So on SQLite :func:`rows` runs a statement on a connection of this process's
own, in the calling (event loop) thread, outside the pool: in WAL mode a
reader never waits for the writer, and with no transaction open every
statement reads the latest commit. The connection is opened on first use (in
each process: a forked worker opens its own), is ``query_only`` (SQLite
refuses any write on it), and is closed when the engine is disposed. Each
statement is compiled once for the engine's dialect; its expanding bind
parameters (``IN (...)``) are expanded for each call.

On PostgreSQL, and on an SQLite URL with options of its own, :func:`rows`
runs the statement through the engine as any other query.
"""

from __future__ import annotations

import os
import sqlite3
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler

from .engine import SQLITE_PRAGMAS

__all__ = ["rows"]


class _Reader:
    """The SQLite file *path*'s read connection of this process, and compiled statements."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.compiled: dict[Executable, SQLCompiler] = {}
        self._connection: sqlite3.Connection | None = None
        self._pid = 0

    def connection(self) -> sqlite3.Connection:
        if self._connection is None or self._pid != os.getpid():
            # (a connection inherited from the parent process is left alone: SQLite's
            # locks belong to the process that took them)
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            for pragma in SQLITE_PRAGMAS:
                if "journal_mode" not in pragma:  # (the writer's; a reader leaves it)
                    connection.execute(pragma)
            connection.execute("PRAGMA query_only=ON")
            self._connection, self._pid = connection, os.getpid()
        return self._connection

    def close(self) -> None:
        if self._connection is not None and self._pid == os.getpid():
            self._connection.close()
        self._connection = None


#: Each SQLite engine's reader (``None``: the engine is not served here).
_readers: weakref.WeakKeyDictionary[Any, _Reader | None] = weakref.WeakKeyDictionary()


def _reader(engine: AsyncEngine) -> _Reader | None:
    sync = engine.sync_engine
    try:
        return _readers[sync]
    except KeyError:
        pass
    url = engine.url
    if not (url.drivername.startswith("sqlite") and not url.query and url.database):
        _readers[sync] = None
        return None
    reader = _readers[sync] = _Reader(url.database)
    event.listen(sync, "engine_disposed", lambda _engine: reader.close())
    return reader


async def rows(
    engine: AsyncEngine, statement: Executable, params: Mapping[str, Any]
) -> Sequence[Sequence[Any]]:
    """The rows *statement* (a ``SELECT`` built once, at import) answers with *params*,
    each a sequence of its columns' values in order. See the module for how it runs.

    Only for statements whose columns need no conversion of SQLite's values (integers,
    text, floats): the SQLite path hands back what ``sqlite3`` reads.
    """
    reader = _reader(engine)
    if reader is None:
        async with engine.connect() as conn:
            return list(await conn.execute(statement, params))
    compiled = reader.compiled.get(statement)
    if compiled is None:
        compiled = statement.compile(dialect=engine.dialect)  # type: ignore[attr-defined]
        assert isinstance(compiled, SQLCompiler)
        reader.compiled[statement] = compiled
    expanded = compiled.construct_expanded_state(dict(params))
    cursor = reader.connection().execute(expanded.statement, expanded.positional_parameters)
    try:
        return cursor.fetchall()
    finally:
        cursor.close()
