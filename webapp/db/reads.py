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
statement reads the latest commit. The connection is opened on first use (a
forked worker opens its own), is ``query_only`` (SQLite refuses any write on
it), reads the file through a memory map, and is closed when the engine is
disposed. Each statement is compiled once for the engine's dialect, and
expanded once for each shape of its parameters (the length of each list bound
to an ``IN (...)``): SQLAlchemy's expansion rewrites the SQL with a regular
expression on every call.

On PostgreSQL the same holds through asyncpg: in one run of
``scripts/bench_reads.py`` a stock query cost 561-598 µs of CPU through the
engine, 207-224 through asyncpg's own pool and 81-92 through this module.
So :func:`rows` runs the statement on a few asyncpg connections of the
worker's own (``database.read_connections``, opened as they are needed, closed
when the engine is disposed; see :mod:`.connections`), which prepare statements
as the engine's do (``database.statement_cache_size``; 0 behind a pooler in
transaction mode). They are beside the engine's pool: a host's PostgreSQL sees
up to that many more from each worker.

An engine not made by :func:`~.engine.create_engine` (or an SQLite URL with
options of its own) gets no reader: :func:`rows` then runs the statement
through the engine as any other query.
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

from .config import DatabaseConfig
from .connections import ReadConnections
from .sqlite import CONNECTION_PRAGMAS

__all__ = ["READER_PRAGMAS", "attach", "read_connections", "rows"]

#: Set on the reader's connection after ``CONNECTION_PRAGMAS``: it refuses writes, and reads
#: the file through a memory map (no ``pread`` call for each page a statement reads).
READER_PRAGMAS = ("PRAGMA query_only=ON", f"PRAGMA mmap_size={256 << 20}")


#: Compiled statements, and their expansions, kept at most (all are dropped when there
#: would be more): :func:`rows` is for statements built once, but one built for each call
#: must not make the process grow.
STATEMENTS_KEPT = 512

#: How one positional parameter of an expanded statement is found: ``(name, None)`` is
#: ``params[name]``, ``(name, i)`` is ``params[name][i]`` (an expanded list's item);
#: ``(None, value)`` is a value the statement holds (e.g. SQLite's ``OFFSET``).
_Slot = tuple[str | None, Any]

#: A statement's parameter shape: the name and length of each list bound to it.
_Shape = tuple[tuple[str, int], ...]


class _Reader:
    """Statements compiled (once) and expanded (once for each shape of their parameters)
    for one engine's dialect, and run on connections of this process's own."""

    def __init__(self, dialect: Any) -> None:
        self.dialect = dialect
        self._compiled: dict[Executable, SQLCompiler] = {}
        self._expanded: dict[tuple[Executable, _Shape], tuple[str, list[_Slot]]] = {}

    async def fetch(self, sql: str, args: tuple[Any, ...]) -> Sequence[Sequence[Any]]:
        raise NotImplementedError

    def forget(self) -> None:
        """Drop the connections without closing them: they belong to the parent process
        (a forked child must not touch them)."""

    def close(self) -> None:
        """Close the connections (the engine was disposed); the next read opens new ones."""

    def sql(self, statement: Executable, params: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
        """*statement*'s SQL for *params*, and its positional parameters."""
        shape = tuple((k, len(v)) for k, v in params.items() if isinstance(v, (list, tuple)))
        known = self._expanded.get((statement, shape))
        if known is None:
            compiled = self._compiled.get(statement)
            if compiled is None:
                compiled = statement.compile(dialect=self.dialect)  # type: ignore[attr-defined]
                assert isinstance(compiled, SQLCompiler)
                if len(self._compiled) >= STATEMENTS_KEPT:  # (statements built per call)
                    self._compiled.clear()
                self._compiled[statement] = compiled
            expanded = compiled.construct_expanded_state(dict(params))
            items = {
                item: (name, i)
                for name, names in expanded.parameter_expansion.items()
                for i, item in enumerate(names)
            }
            slots: list[_Slot] = [
                items.get(name)
                or ((name, None) if name in params else (None, expanded.parameters[name]))
                for name in expanded.positiontup or ()
            ]
            if len(self._expanded) >= STATEMENTS_KEPT:
                self._expanded.clear()
            known = self._expanded[(statement, shape)] = (expanded.statement, slots)
        sql, slots = known
        return sql, tuple(
            value if name is None else params[name] if value is None else params[name][value]
            for name, value in slots
        )


class _SqliteReader(_Reader):
    """The SQLite file *path*'s read connection of this process (see the module)."""

    def __init__(self, dialect: Any, path: str) -> None:
        super().__init__(dialect)
        self.path = path
        self._connection: sqlite3.Connection | None = None

    async def fetch(self, sql: str, args: tuple[Any, ...]) -> Sequence[Sequence[Any]]:
        connection = self._connection or self._connect()
        cursor = connection.execute(sql, args)
        try:
            return cursor.fetchall()
        finally:
            cursor.close()

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        for pragma in (*CONNECTION_PRAGMAS, *READER_PRAGMAS):
            connection.execute(pragma)
        self._connection = connection
        return connection

    def forget(self) -> None:
        self._connection = None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = None


class _PostgresReader(_Reader):
    """Connections of this process's own (:class:`~.connections.ReadConnections`): at most
    *size*, made with *connect* (asyncpg's ``connect`` arguments, as SQLAlchemy's dialect
    derives them from the URL); a read waits at most *wait* seconds for one."""

    def __init__(self, dialect: Any, connect: dict[str, Any], size: int, wait: float) -> None:
        super().__init__(dialect)
        self.connections = ReadConnections(connect, size, wait)

    async def fetch(self, sql: str, args: tuple[Any, ...]) -> Sequence[Sequence[Any]]:
        return await self.connections.fetch(sql, args)

    def forget(self) -> None:
        self.connections.forget()

    def close(self) -> None:
        self.connections.close()


#: Each engine's reader, by its ``sync_engine`` (see :func:`attach`).
_readers: weakref.WeakKeyDictionary[Any, _Reader] = weakref.WeakKeyDictionary()


def _forget_all() -> None:
    for reader in list(_readers.values()):
        reader.forget()


os.register_at_fork(after_in_child=_forget_all)


def attach(
    engine: AsyncEngine, cfg: DatabaseConfig, timeouts: Mapping[str, Any] | None = None
) -> None:
    """Give *engine* (made by :func:`~.engine.create_engine` from *cfg*) its reader;
    *timeouts*: the asyncpg ``connect`` arguments that limit a statement, as the
    engine's connections have them."""
    url, sync = engine.url, engine.sync_engine
    reader: _Reader
    if url.drivername.startswith("sqlite"):
        if url.query or not url.database:
            return
        reader = _SqliteReader(engine.dialect, url.database)
    elif url.drivername == "postgresql+asyncpg":
        args, kwargs = engine.dialect.create_connect_args(url)
        if args:
            return
        # asyncpg's connect timeout, and the engine's prepared-statement cache size (0 for
        # a pooler in transaction mode, which cannot keep named prepared statements)
        connect = {
            **kwargs,
            "timeout": cfg.pool_timeout,
            "statement_cache_size": cfg.statement_cache_size,
            **(timeouts or {}),
        }
        reader = _PostgresReader(engine.dialect, connect, cfg.read_connections, cfg.pool_timeout)
    else:
        return
    _readers[sync] = reader
    event.listen(sync, "engine_disposed", lambda _engine: reader.close())


def read_connections(engine: AsyncEngine) -> ReadConnections | None:
    """*engine*'s read connections on PostgreSQL (for their gauges), else ``None``."""
    reader = _readers.get(engine.sync_engine)
    return reader.connections if isinstance(reader, _PostgresReader) else None


async def rows(
    engine: AsyncEngine, statement: Executable, params: Mapping[str, Any]
) -> Sequence[Sequence[Any]]:
    """The rows *statement* (a ``SELECT`` built once, at import) answers with *params*,
    each a sequence of its columns' values in order. See the module for how it runs.

    Only for statements whose columns need no conversion of the driver's values
    (integers, text, floats): a reader hands back what ``sqlite3`` or asyncpg reads.
    """
    reader = _readers.get(engine.sync_engine)
    if reader is None:
        async with engine.connect() as conn:
            return list(await conn.execute(statement, params))
    return await reader.fetch(*reader.sql(statement, params))
