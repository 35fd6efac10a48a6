"""The schema's constraints hold on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from sleigh.webapp.db.schema import (
    brands,
    cart_lines,
    carts,
    categories,
    customers,
    inventory,
    orders,
    products,
    sessions,
)

NOW = datetime(2025, 12, 1, 12, 0, tzinfo=UTC)


async def put(engine: AsyncEngine, table: Table, **values: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(table).values(**values))


async def seed_product(engine: AsyncEngine, sku: str = "SKU-1", pid: int = 1) -> None:
    async with engine.begin() as conn:
        if (await conn.execute(select(brands.c.id))).first() is None:
            await conn.execute(insert(brands).values(id=1, slug="acme", name="Acme"))
            await conn.execute(
                insert(categories).values(
                    id=1, slug="toys", name="Toys", path="toys", depth=0, sort_order=0
                )
            )
    await put(engine, products, **product_values(sku=sku, id=pid))


def product_values(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "sku": "SKU-1", "slug": "kite", "title": "Kite", "description": "A kite.",
        "brand_id": 1, "category_id": 1, "price_cents": 999, "age_min": 3, "age_max": 99,
        "popularity": 1, "image": "toy-01", "created_at": NOW, "updated_at": NOW,
    }  # fmt: skip
    values.update(overrides)
    return values


def order_values(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "number": "E-1", "idempotency_key": "k-1", "email": "a@example.com", "status": "new",
        "subtotal_cents": 1000, "shipping_cents": 500, "tax_cents": 80, "total_cents": 1580,
        "shipping_method": "ground", "shipping_address": {"city": "Santa Monica"},
        "created_at": NOW, "updated_at": NOW,
    }  # fmt: skip
    values.update(overrides)
    return values


def customer(email: str) -> dict[str, Any]:
    return {"email": email, "password_hash": "x", "name": "A", "created_at": NOW}


async def test_duplicate_email_rejected(engine: AsyncEngine) -> None:
    await put(engine, customers, **customer("a@example.com"))
    with pytest.raises(IntegrityError):
        await put(engine, customers, **customer("a@example.com"))


async def test_email_must_be_lower_case(engine: AsyncEngine) -> None:
    with pytest.raises(IntegrityError):
        await put(engine, customers, **customer("A@Example.com"))


async def test_duplicate_sku_rejected(engine: AsyncEngine) -> None:
    await seed_product(engine)
    with pytest.raises(IntegrityError):
        await seed_product(engine, sku="SKU-1", pid=2)
    await seed_product(engine, sku="SKU-2", pid=2)


async def test_duplicate_idempotency_key_rejected(engine: AsyncEngine) -> None:
    await put(engine, orders, **order_values())
    with pytest.raises(IntegrityError):
        await put(engine, orders, **order_values(number="E-2"))
    await put(engine, orders, **order_values(number="E-2", idempotency_key="k-2"))
    async with engine.connect() as conn:
        address = (await conn.execute(select(orders.c.shipping_address))).scalars().first()
    assert address == {"city": "Santa Monica"}


@pytest.mark.parametrize("column", ["on_hand", "reserved"])
async def test_negative_stock_rejected(engine: AsyncEngine, column: str) -> None:
    await seed_product(engine)
    await put(engine, inventory, product_id=1, on_hand=5, reserved=0, updated_at=NOW)
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(update(inventory).values({column: inventory.c[column] - 6}))
    async with engine.connect() as conn:
        row = (await conn.execute(select(inventory.c.on_hand, inventory.c.reserved))).one()
    assert tuple(row) == (5, 0)


@pytest.mark.parametrize(
    "overrides", [{"price_cents": -1}, {"age_min": 9, "age_max": 3}], ids=["price", "ages"]
)
async def test_product_checks(engine: AsyncEngine, overrides: dict[str, Any]) -> None:
    await seed_product(engine)
    with pytest.raises(IntegrityError):
        await put(engine, products, **product_values(sku="SKU-9", id=9, **overrides))


async def test_foreign_keys_enforced(engine: AsyncEngine) -> None:
    with pytest.raises(IntegrityError):
        await put(engine, products, **product_values(brand_id=42))


async def test_cart_lines_need_positive_quantity_and_cascade(engine: AsyncEngine) -> None:
    await seed_product(engine)
    await put(engine, carts, id=1, session_id="s", status="open", created_at=NOW, updated_at=NOW)
    with pytest.raises(IntegrityError):
        await put(engine, cart_lines, cart_id=1, product_id=1, quantity=0, added_at=NOW)
    await put(engine, cart_lines, cart_id=1, product_id=1, quantity=2, added_at=NOW)
    with pytest.raises(IntegrityError):
        await put(engine, carts, session_id="s", status="lost", created_at=NOW, updated_at=NOW)
    async with engine.begin() as conn:
        await conn.execute(delete(carts))
    async with engine.connect() as conn:
        assert (await conn.execute(select(cart_lines))).first() is None


async def test_timestamps_round_trip_as_aware_utc(engine: AsyncEngine) -> None:
    later = (NOW + timedelta(hours=1)).astimezone(UTC)
    plus2 = later.astimezone(timezone(timedelta(hours=2)))
    await put(engine, sessions, id="tok", data={"cart": 1}, created_at=NOW, expires_at=plus2)
    async with engine.connect() as conn:
        row = (await conn.execute(select(sessions.c.expires_at, sessions.c.data))).one()
        expired = (
            await conn.execute(select(sessions.c.id).where(sessions.c.expires_at < later))
        ).first()
    assert row.expires_at == later
    assert row.expires_at.tzinfo is not None
    assert row.expires_at.utcoffset() == timedelta(0)
    assert row.data == {"cart": 1}
    assert expired is None


async def test_naive_timestamps_refused(engine: AsyncEngine) -> None:
    with pytest.raises(StatementError, match="naive"):
        await put(engine, sessions, id="t", data={}, created_at=NOW.replace(tzinfo=None),
                  expires_at=NOW)  # fmt: skip
