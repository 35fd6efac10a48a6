"""Pytest plugin: a fresh database per test, on SQLite and on PostgreSQL.

``db_url`` is parametrised ``sqlite`` / ``postgres``. SQLite is a file in
``tmp_path``; PostgreSQL is a new database ``sleigh_t_<random>`` on the
server named by ``SLEIGH_TEST_POSTGRES_URL`` (default
``postgresql+asyncpg://postgres@127.0.0.1:5432/test``), dropped at teardown.
An unreachable server skips the PostgreSQL cases, or fails them when
``SLEIGH_TEST_REQUIRE_POSTGRES=1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from sleigh.daemons.runtime.config import load_section
from sleigh.webapp.db.config import DatabaseConfig
from sleigh.webapp.db.engine import create_engine
from sleigh.webapp.db.migrate import upgrade
from sleigh.webapp.demo.catalog import load_demo

__all__ = [
    "DEMO_PRODUCTS",
    "DEMO_SEED",
    "admin_connection",
    "db_config",
    "db_url",
    "demo_engine",
    "end_backend",
    "engine",
    "make_db_config",
    "postgres_database",
    "postgres_server_url",
]

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
#: The size and seed of the catalog ``demo_engine`` loads.
DEMO_PRODUCTS = 300
DEMO_SEED = 2000


def postgres_server_url() -> URL:
    """The administrative PostgreSQL URL tests create their databases through."""
    return make_url(os.environ.get("SLEIGH_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL)


def _dsn(url: URL) -> str:
    """*url* as a DSN asyncpg understands (no ``+asyncpg`` in the scheme)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def admin_connection() -> asyncpg.Connection:
    """A connection to the server's administrative database (close it); skips the test
    (or fails it, with ``SLEIGH_TEST_REQUIRE_POSTGRES=1``) when the server is unreachable."""
    url = postgres_server_url()
    try:
        return await asyncpg.connect(_dsn(url), timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        reason = f"PostgreSQL at {url.render_as_string()} unreachable: {exc!r}"
        if os.environ.get("SLEIGH_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason} (SLEIGH_TEST_REQUIRE_POSTGRES=1)")
        pytest.skip(f"{reason}; set SLEIGH_TEST_POSTGRES_URL to test PostgreSQL")


async def end_backend(pid: int) -> None:
    """End the server process *pid* (as a server restart ends them all), and wait until
    the server no longer lists it."""
    admin = await admin_connection()
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        gone = "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $1"
        for _ in range(100):
            if await admin.fetchval(gone, pid):
                break
            await asyncio.sleep(0.02)
    finally:
        await admin.close()
    await asyncio.sleep(0.05)  # (for the client to read the server's goodbye)


async def _drop_database(name: str) -> None:
    admin = await admin_connection()
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest_asyncio.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    ids=["sqlite", "postgres"],
)
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a fresh, empty database (no tables) for one test."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/sleigh.db"
        return
    async with postgres_database() as url:
        yield url


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database ``sleigh_t_<random>``, dropped on exit; its URL.

    Skips the test (or fails it, with ``SLEIGH_TEST_REQUIRE_POSTGRES=1``) when
    the server is unreachable.
    """
    name = f"sleigh_t_{secrets.token_hex(6)}"
    admin = await admin_connection()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield postgres_server_url().set(database=name).render_as_string(hide_password=False)
    finally:
        await _drop_database(name)


def make_db_config(url: str, **settings: object) -> DatabaseConfig:
    """A validated ``[database]`` section for *url*, with other keys as given."""
    return load_section(DatabaseConfig, {"url": url, **settings}, {})


@pytest.fixture
def db_config(db_url: str) -> DatabaseConfig:
    """The ``[database]`` section for ``db_url``."""
    return make_db_config(db_url)


@pytest_asyncio.fixture
async def engine(db_config: DatabaseConfig, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on the fresh database, migrated to head; disposed at teardown."""
    eng = create_engine(db_config, tmp_path)
    try:
        await upgrade(eng)
        yield eng
    finally:
        await eng.dispose()


@pytest_asyncio.fixture
async def demo_engine(engine: AsyncEngine) -> AsyncEngine:
    """``engine`` holding a small demo catalog (:data:`DEMO_PRODUCTS`, seed :data:`DEMO_SEED`)."""
    await load_demo(engine, products=DEMO_PRODUCTS, seed=DEMO_SEED)
    return engine
