"""Engines: one pooled :class:`~sqlalchemy.ext.asyncio.AsyncEngine` per process.

Two back ends, the same SQL: SQLite through aiosqlite (the embedded default,
a file ``sleigh.db`` under ``SLEIGH_HOME``) and PostgreSQL through asyncpg
(production). Connections are pooled and kept open; a PostgreSQL connection
that has been idle for ``database.ping_after`` is pinged on checkout and replaced
if it died while idle (a server restart). Not every checkout: SQLAlchemy's
``pool_pre_ping`` pings in a transaction of its own (``BEGIN``, ``;``,
``ROLLBACK``, for poolers in transaction mode), three round trips before each
use, when a connection given back a moment ago is all but certain to be alive.
A SQLite connection is a file handle that cannot die that way, so it is not
pinged: a ping would cost a round trip to aiosqlite's thread before every query.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from . import reads, sqlite
from .config import DatabaseConfig
from .errors import DatabaseURLError
from .sqlite import SQLITE_PRAGMAS

__all__ = ["SQLITE_PRAGMAS", "SUPPORTED_DRIVERS", "create_engine", "database_url", "redacted"]

log = logging.getLogger("sleigh.db")

#: Seconds a client waits beyond ``statement_timeout`` for a server to say it cancelled a
#: statement, before it gives up on the server (a cut network, a server that hangs).
CLIENT_GRACE = 1.0
#: The SQLAlchemy drivers sleigh runs on; every other URL is refused.
SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        raise DatabaseURLError(
            f"database.url: cannot parse {redacted(url)!r}; expected e.g."
            " postgresql+asyncpg://user@host/db or sqlite+aiosqlite:///path/to/sleigh.db"
        ) from None


def database_url(cfg: DatabaseConfig, home: Path) -> str:
    """The URL in force: ``database.url``, else an SQLite file under *home*.

    :param home: ``SLEIGH_HOME``; the default database is ``{home}/sleigh.db``.
    :raises DatabaseURLError: if the URL is malformed or its driver is not one of
        :data:`SUPPORTED_DRIVERS` (the message names ``database.url``).
    """
    url = cfg.url.strip() or f"sqlite+aiosqlite:///{home}/sleigh.db"
    parsed = _parse(url)
    if parsed.drivername not in SUPPORTED_DRIVERS:
        raise DatabaseURLError(
            f"database.url: unsupported driver {parsed.drivername!r} in {redacted(url)!r};"
            f" use one of {', '.join(SUPPORTED_DRIVERS)}"
            " (e.g. postgresql+asyncpg://user@host/db), or leave it empty for SQLite"
        )
    if parsed.drivername.startswith("sqlite") and parsed.database in (None, "", ":memory:"):
        raise DatabaseURLError(
            "database.url: an in-memory SQLite database is not shared between connections;"
            " name a file, e.g. sqlite+aiosqlite:////var/lib/sleigh/sleigh.db"
        )
    return url


def redacted(url: str | URL) -> str:
    """*url* fit for a log line: the password, if any, is masked."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except ArgumentError:
        return "<unparseable database URL>"
    return parsed.render_as_string(hide_password=True)


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Run :data:`SQLITE_PRAGMAS` on a fresh connection.

    - ``journal_mode=WAL``: readers never block the writer nor the writer
      readers; a commit appends to the log instead of rewriting pages.
      (Persistent in the file; repeating it is cheap.)
    - ``synchronous=NORMAL``: in WAL mode, fsync only at checkpoints. A
      power cut may lose the last commits but never corrupts the file.
    - ``foreign_keys=ON``: SQLite ignores ``REFERENCES`` unless told, per
      connection; with it the same constraints hold as on PostgreSQL.
    - ``busy_timeout=5000``: a writer that finds the database locked by another
      process waits up to 5 s instead of failing at once with "database is locked".
    """
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


#: Where a pooled connection notes when it was given back (its ``info``, which SQLAlchemy
#: empties when the connection is closed: a new connection has no such note).
_IDLE_SINCE = "sleigh_idle_since"


def _ping_when_idle(engine: AsyncEngine, after: float) -> None:
    """Ping *engine*'s connections on checkout once they have been idle *after* seconds
    (see the module); a dead one is replaced by the pool."""

    def checkin(dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < after:
            return  # new, or given back a moment ago
        try:
            dbapi_connection.ping()
        except Exception as exc:
            raise DisconnectionError(f"a pooled connection died while idle: {exc}") from exc

    event.listen(engine.sync_engine, "checkin", checkin)
    event.listen(engine.sync_engine, "checkout", checkout)


def create_engine(
    cfg: DatabaseConfig, home: Path, *, query_timeout: float | None = None
) -> AsyncEngine:
    """A pooled engine for the database in force (see :func:`database_url`).

    For SQLite the file's directory is created, every connection gets
    :data:`SQLITE_PRAGMAS`, and reads run in the event loop's thread
    (:mod:`.sqlite`); for PostgreSQL each connection caches up to
    ``database.statement_cache_size`` prepared statements. The catalog's hot reads
    get a reader of their own (:mod:`.reads`).

    :param query_timeout: PostgreSQL: seconds after which the server cancels a
        statement (its ``statement_timeout``), and the client gives up on a server
        that has not answered :data:`CLIENT_GRACE` later; the web tier passes
        ``database.query_timeout``. ``None``: no limit (tools that build an index or
        load a catalog run long statements).
    :raises DatabaseURLError: if ``database.url`` is not supported.
    """
    url = make_url(database_url(cfg, home))
    connect_args: dict[str, Any] = {}
    options: dict[str, Any] = {}
    server = url.drivername.startswith("postgresql")
    if server:
        connect_args["prepared_statement_cache_size"] = cfg.statement_cache_size
        connect_args.update(timeouts(query_timeout))
    else:
        Path(str(url.database)).parent.mkdir(parents=True, exist_ok=True)
        if not url.query:  # (a URL with options of its own keeps aiosqlite's own connect)
            options["async_creator"] = sqlite.connector(str(url.database))
    engine = create_async_engine(
        url,
        pool_size=cfg.pool_size,
        max_overflow=cfg.max_overflow,
        pool_timeout=cfg.pool_timeout,
        echo=cfg.echo,
        connect_args=connect_args,
        **options,
    )
    if server:
        _ping_when_idle(engine, cfg.ping_after)
    else:
        event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
    reads.attach(engine, cfg, timeouts(query_timeout) if server else {})
    log.info(
        "database %s (pool %d + %d%s)",
        redacted(url),
        cfg.pool_size,
        cfg.max_overflow,
        f", statements cancelled after {query_timeout:g}s" if server and query_timeout else "",
    )
    return engine


def timeouts(query_timeout: float | None) -> dict[str, Any]:
    """asyncpg's ``connect`` arguments that put *query_timeout* on a connection (none for
    ``None``): the server's ``statement_timeout``, so that the server itself stops the
    statement (a client that gives up and closes its connection leaves it running),
    and the client's ``command_timeout``, for a server that does not answer at all."""
    if query_timeout is None:
        return {}
    return {
        "server_settings": {"statement_timeout": str(max(1, round(query_timeout * 1000)))},
        "command_timeout": query_timeout + CLIENT_GRACE,
    }
