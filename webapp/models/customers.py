"""Customers: accounts, passwords (argon2id), addresses and password resets.

Password hashing takes tens of milliseconds of CPU on purpose, so it runs
in a worker thread, off the event loop. Sign-in takes as long whether or
not the email is known, and a reset request answers the same either way,
so neither tells who has an account.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..db import schema
from ..db.passwords import hash_password, needs_rehash, verify_password

MIN_PASSWORD = 10
MAX_PASSWORD = 200
#: Verified against when the email is unknown, so sign-in takes as long either way.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


class EmailTaken(Exception):
    """An account with that email exists already."""


@dataclass(frozen=True)
class Customer:
    id: int
    email: str
    name: str


def password_problem(password: str, confirm: str | None = None) -> str | None:
    """What is wrong with a new password, or ``None``."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        return f"Choose a password of {MIN_PASSWORD} to {MAX_PASSWORD} characters."
    if confirm is not None and confirm != password:
        return "The two passwords are not the same."
    return None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Customers:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(self, email: str, name: str, password: str) -> Customer:
        """:raises EmailTaken: the email has an account already."""
        digest = await asyncio.to_thread(hash_password, password)
        values = {"email": email, "name": name, "password_hash": digest}
        try:
            async with self.engine.begin() as conn:
                done = await conn.execute(
                    schema.customers.insert().values(**values, created_at=datetime.now(UTC))
                )
        except IntegrityError as exc:
            raise EmailTaken(email) from exc
        pk = done.inserted_primary_key
        assert pk is not None
        return Customer(int(pk[0]), email, name)

    async def get(self, customer_id: int) -> Customer | None:
        c = schema.customers.c
        query = sa.select(c.id, c.email, c.name).where(c.id == customer_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else Customer(*row)

    async def authenticate(self, email: str, password: str) -> Customer | None:
        c = schema.customers.c
        query = sa.select(c.id, c.email, c.name, c.password_hash).where(c.email == email)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        digest = row.password_hash if row is not None else _DUMMY_HASH
        if not await asyncio.to_thread(verify_password, digest, password) or row is None:
            return None
        if needs_rehash(digest):
            await self.set_password(row.id, password)
        return Customer(row.id, row.email, row.name)

    async def set_password(self, customer_id: int, password: str) -> None:
        digest = await asyncio.to_thread(hash_password, password)
        c = schema.customers
        async with self.engine.begin() as conn:
            await conn.execute(c.update().where(c.c.id == customer_id).values(password_hash=digest))

    async def start_reset(self, email: str, ttl: float) -> tuple[Customer, str] | None:
        """A single-use reset token for *email*'s account (``None``: no such account)."""
        c = schema.customers.c
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(sa.select(c.id, c.email, c.name).where(c.email == email))
            ).first()
            if row is None:
                return None
            token = secrets.token_urlsafe(32)
            now = datetime.now(UTC)
            await conn.execute(
                schema.password_resets.insert().values(
                    token_hash=_token_hash(token),
                    customer_id=row.id,
                    created_at=now,
                    expires_at=now + timedelta(seconds=ttl),
                )
            )
        return Customer(*row), token

    async def finish_reset(self, token: str, password: str | None) -> int | None:
        """The account a live, unused token is for; with *password*, set it and spend the token."""
        r = schema.password_resets
        now = datetime.now(UTC)
        live = (
            (r.c.token_hash == _token_hash(token)) & r.c.used_at.is_(None) & (r.c.expires_at > now)
        )
        async with self.engine.begin() as conn:
            customer_id = (await conn.execute(sa.select(r.c.customer_id).where(live))).scalar()
            if customer_id is None or password is None:
                return customer_id
            done = await conn.execute(r.update().where(live).values(used_at=now))
            if done.rowcount != 1:
                return None
        await self.set_password(customer_id, password)
        return int(customer_id)

    async def addresses(self, customer_id: int) -> list[dict[str, Any]]:
        a = schema.addresses
        query = sa.select(a).where(a.c.customer_id == customer_id).order_by(a.c.id)
        async with self.engine.connect() as conn:
            return [dict(row._mapping) for row in await conn.execute(query)]

    async def add_address(self, customer_id: int, address: dict[str, Any]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                schema.addresses.insert().values(
                    customer_id=customer_id, created_at=datetime.now(UTC), **address
                )
            )

    async def delete_address(self, customer_id: int, address_id: int) -> bool:
        a = schema.addresses
        async with self.engine.begin() as conn:
            done = await conn.execute(
                a.delete().where(a.c.id == address_id, a.c.customer_id == customer_id)
            )
        return done.rowcount == 1
