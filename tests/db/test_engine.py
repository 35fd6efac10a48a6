"""Engines, URLs and passwords."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from sleigh.errors import SleighError
from sleigh.webapp.db.engine import create_engine, database_url, redacted
from sleigh.webapp.db.errors import DatabaseError, DatabaseURLError
from sleigh.webapp.db.passwords import hash_password, needs_rehash, verify_password
from tests.plugins.database import end_backend, make_db_config


def test_default_url_is_a_file_under_home(tmp_path: Path) -> None:
    url = database_url(make_db_config(""), tmp_path / "home")
    assert url == f"sqlite+aiosqlite:///{tmp_path}/home/sleigh.db"


def test_explicit_url_wins(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://shop@db.internal/shop"
    assert database_url(make_db_config(url), tmp_path) == url


@pytest.mark.parametrize(
    "url",
    [
        "mysql+aiomysql://u@h/db",
        "postgresql+psycopg2://u@h/db",
        "sqlite:///plain-sync.db",
        "not a url at all",
        "sqlite+aiosqlite://",
    ],
)
def test_unsupported_url_names_the_key(url: str, tmp_path: Path) -> None:
    with pytest.raises(DatabaseURLError, match=r"database\.url") as info:
        database_url(make_db_config(url), tmp_path)
    assert isinstance(info.value, DatabaseError)
    assert isinstance(info.value, SleighError)


def test_unsupported_url_refused_by_create_engine(tmp_path: Path) -> None:
    with pytest.raises(DatabaseURLError, match=r"database\.url.*postgresql\+asyncpg"):
        create_engine(make_db_config("oracle://scott:tiger@h/db"), tmp_path)


def test_redacted_hides_the_password() -> None:
    shown = redacted("postgresql+asyncpg://shop:s3cret@db/shop")
    assert "s3cret" not in shown
    assert shown.startswith("postgresql+asyncpg://shop:")
    assert "s3cret" not in redacted("::: s3cret")


async def test_sqlite_pragmas_hold_on_every_connection(tmp_path: Path) -> None:
    engine = create_engine(make_db_config(""), tmp_path / "deep" / "home")
    try:
        assert (tmp_path / "deep" / "home").is_dir()
        async with engine.connect() as a, engine.connect() as b:
            for conn in (a, b):
                mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
                assert mode == "wal"
                assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
                assert (await conn.execute(text("PRAGMA synchronous"))).scalar_one() == 1
                assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one() == 5000
    finally:
        await engine.dispose()


async def test_engine_runs_queries(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT 1 + 1"))).scalar_one() == 2


def test_password_hash_and_verify() -> None:
    hashed = hash_password("correct horse battery staple")
    assert hashed.startswith("$argon2id$")
    assert "correct horse" not in hashed
    assert verify_password(hashed, "correct horse battery staple")
    assert not verify_password(hashed, "Correct horse battery staple")
    assert not verify_password(hashed, "")
    assert not needs_rehash(hashed)


def test_password_hashes_are_salted() -> None:
    assert hash_password("pw") != hash_password("pw")


def test_malformed_hash_never_matches() -> None:
    assert not verify_password("not-a-hash", "pw")
    assert not verify_password("", "pw")


async def _backend(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_connection_idle_past_ping_after_is_pinged_and_replaced_if_dead(
    db_url: str, tmp_path: Path
) -> None:
    engine = create_engine(make_db_config(db_url, ping_after="50ms"), tmp_path)
    try:
        first = await _backend(engine)
        assert await _backend(engine) == first  # (the pool keeps it)
        await end_backend(first)
        await asyncio.sleep(0.1)
        assert await _backend(engine) != first  # no error: the ping found it dead
    finally:
        await engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_connection_used_again_within_ping_after_is_not_pinged(
    db_url: str, tmp_path: Path
) -> None:
    """No ping (three round trips) before a connection given back a moment ago: a dead
    one is met by the query itself, which fails, and the pool replaces it."""
    engine = create_engine(make_db_config(db_url, ping_after="1h"), tmp_path)
    try:
        first = await _backend(engine)
        await end_backend(first)
        with pytest.raises(DBAPIError) as failed:
            await _backend(engine)
        assert failed.value.connection_invalidated
        assert await _backend(engine) != first
    finally:
        await engine.dispose()
