"""Orders: placed once, never lost, never doubled, never oversold.

Placing an order is two short transactions around the payment call, so no
database lock is held while the gateway thinks:

1. :meth:`Orders.reserve`: insert the order (``pending``) under the
   checkout's idempotency key, and reserve each line's stock with one
   conditional ``UPDATE ... WHERE on_hand - reserved >= quantity``. A
   second submission of the same checkout hits the unique key and gets
   the first order back; a line without stock rolls everything back.
2. :meth:`Orders.settle`: with the gateway's answer, mark the order
   ``paid`` and the cart ``ordered``, or ``declined`` and give the stock back.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..db import schema
from .values import format_price

#: Shipping methods: key → (label, price in cents, free from this subtotal or None).
SHIPPING: dict[str, tuple[str, int, int | None]] = {
    "standard": ("Standard, 3 to 5 working days", 499, 5000),
    "express": ("Express, next working day", 1499, None),
}

STATUS_LABELS = {
    "pending": "Confirming payment",
    "paid": "Paid, being packed",
    "declined": "Payment declined",
    "shipped": "Shipped",
    "cancelled": "Cancelled",
}


class OutOfStock(Exception):
    """Some lines cannot be had in the quantity asked: product id → units left."""

    def __init__(self, left: dict[int, int]) -> None:
        super().__init__(f"not enough stock for products {sorted(left)}")
        self.left = left


def shipping_cents(method: str, subtotal: int) -> int:
    _label, price, free_from = SHIPPING[method]
    return 0 if free_from is not None and subtotal >= free_from else price


@dataclass(frozen=True)
class OrderLine:
    product_id: int
    title: str
    quantity: int
    unit_price_cents: int

    @property
    def total(self) -> str:
        return format_price(self.unit_price_cents * self.quantity)

    @property
    def unit_price(self) -> str:
        return format_price(self.unit_price_cents)


@dataclass(frozen=True)
class Order:
    """An order as pages show it."""

    id: int
    number: str
    status: str
    email: str
    customer_id: int | None
    subtotal_cents: int
    shipping_cents: int
    total_cents: int
    shipping_method: str
    address: dict[str, Any]
    created_at: datetime
    lines: tuple[OrderLine, ...] = ()

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    def money(self, cents: int) -> str:
        return format_price(cents)


class Orders:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def reserve(
        self,
        key: str,
        lines: dict[int, int],
        *,
        email: str,
        method: str,
        address: dict[str, Any],
        customer_id: int | None,
    ) -> tuple[Order, bool]:
        """Record the order and reserve its stock; ``(order, created)``.

        :raises OutOfStock: nothing is recorded then.
        """
        now = datetime.now(UTC)
        try:
            async with self.engine.begin() as conn:
                order_id = await _insert_order(conn, key, email, method, address, customer_id, now)
                await _reserve_lines(conn, order_id, lines, now)
                await _set_totals(conn, order_id, method)
        except IntegrityError:
            existing = await self.by_key(key)
            if existing is None:
                raise
            return existing, False
        found = await self.by_id(order_id)
        assert found is not None
        return found, True

    async def settle(
        self, order: Order, *, approved: bool, reference: str, cart_id: int | None
    ) -> None:
        """Paid: the cart is ordered. Declined: the reserved stock goes back."""
        now = datetime.now(UTC)
        o, inv = schema.orders, schema.inventory
        async with self.engine.begin() as conn:
            status = "paid" if approved else "declined"
            done = await conn.execute(
                o.update()
                .where(o.c.id == order.id, o.c.status == "pending")
                .values(status=status, payment_ref=reference or None, updated_at=now)
            )
            if done.rowcount == 0:
                return  # settled already (a retried request)
            if approved and cart_id is not None:
                await conn.execute(
                    schema.carts.update()
                    .where(schema.carts.c.id == cart_id)
                    .values(status="ordered", updated_at=now)
                )
            if not approved:
                for line in order.lines:
                    await conn.execute(
                        inv.update()
                        .where(inv.c.product_id == line.product_id)
                        .values(reserved=inv.c.reserved - line.quantity, updated_at=now)
                    )

    async def by_key(self, key: str) -> Order | None:
        return await self._one(schema.orders.c.idempotency_key == key)

    async def by_id(self, order_id: int) -> Order | None:
        return await self._one(schema.orders.c.id == order_id)

    async def by_number(self, number: str) -> Order | None:
        return await self._one(schema.orders.c.number == number)

    async def history(self, customer_id: int, limit: int = 50) -> list[Order]:
        o = schema.orders
        query = (
            sa.select(o)
            .where(o.c.customer_id == customer_id)
            .order_by(o.c.created_at.desc(), o.c.id.desc())
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            return [_order(row._mapping, ()) for row in await conn.execute(query)]

    async def _one(self, where: sa.ColumnElement[bool]) -> Order | None:
        o, ol = schema.orders, schema.order_lines
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(o).where(where))).first()
            if row is None:
                return None
            query = (
                sa.select(ol.c.product_id, ol.c.title, ol.c.quantity, ol.c.unit_price_cents)
                .where(ol.c.order_id == row.id)
                .order_by(ol.c.line_no)
            )
            lines = tuple(OrderLine(*line) for line in await conn.execute(query))
        return _order(row._mapping, lines)


def _order(row: Any, lines: tuple[OrderLine, ...]) -> Order:
    return Order(
        id=row["id"],
        number=row["number"],
        status=row["status"],
        email=row["email"],
        customer_id=row["customer_id"],
        subtotal_cents=row["subtotal_cents"],
        shipping_cents=row["shipping_cents"],
        total_cents=row["total_cents"],
        shipping_method=row["shipping_method"],
        address=dict(row["shipping_address"]),
        created_at=row["created_at"],
        lines=lines,
    )


def new_order_number(now: datetime) -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return f"{now:%y%m%d}-" + "".join(secrets.choice(alphabet) for _ in range(6))


async def _insert_order(
    conn: AsyncConnection,
    key: str,
    email: str,
    method: str,
    address: dict[str, Any],
    customer_id: int | None,
    now: datetime,
) -> int:
    done = await conn.execute(
        schema.orders.insert().values(
            number=new_order_number(now),
            idempotency_key=key,
            customer_id=customer_id,
            email=email,
            status="pending",
            subtotal_cents=0,
            shipping_cents=0,
            tax_cents=0,
            total_cents=0,
            shipping_method=method,
            shipping_address=address,
            created_at=now,
            updated_at=now,
        )
    )
    pk = done.inserted_primary_key
    assert pk is not None
    return int(pk[0])


async def _reserve_lines(
    conn: AsyncConnection, order_id: int, lines: dict[int, int], now: datetime
) -> None:
    inv, p = schema.inventory, schema.products
    short: dict[int, int] = {}
    for product_id, quantity in sorted(lines.items()):
        done = await conn.execute(
            inv.update()
            .where(inv.c.product_id == product_id, inv.c.on_hand - inv.c.reserved >= quantity)
            .values(reserved=inv.c.reserved + quantity, updated_at=now)
        )
        if done.rowcount == 0:
            left = await conn.execute(
                sa.select(inv.c.on_hand - inv.c.reserved).where(inv.c.product_id == product_id)
            )
            short[product_id] = max(0, left.scalar_one_or_none() or 0)
    if short:
        raise OutOfStock(short)
    query = sa.select(p.c.id, p.c.sku, p.c.title, p.c.price_cents).where(p.c.id.in_(list(lines)))
    rows = {row.id: row for row in await conn.execute(query)}
    values = [
        {
            "order_id": order_id,
            "line_no": n,
            "product_id": pid,
            "sku": rows[pid].sku,
            "title": rows[pid].title,
            "quantity": lines[pid],
            "unit_price_cents": rows[pid].price_cents,
        }
        for n, pid in enumerate(lines, 1)
    ]
    await conn.execute(schema.order_lines.insert(), values)


async def _set_totals(conn: AsyncConnection, order_id: int, method: str) -> None:
    ol, o = schema.order_lines, schema.orders
    subtotal = (
        await conn.execute(
            sa.select(
                sa.func.coalesce(sa.func.sum(ol.c.quantity * ol.c.unit_price_cents), 0)
            ).where(ol.c.order_id == order_id)
        )
    ).scalar_one()
    shipping = shipping_cents(method, int(subtotal))
    await conn.execute(
        o.update()
        .where(o.c.id == order_id)
        .values(subtotal_cents=subtotal, shipping_cents=shipping, total_cents=subtotal + shipping)
    )
