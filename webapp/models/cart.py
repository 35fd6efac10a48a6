"""The shopping cart: the database holds it, the object cache speeds it up.

A cart is a row of ``carts`` and its ``cart_lines``; a guest's cart is
named in the session (``cart``), a signed-in customer's cart is their open
cart. Every change is written to the database first, in one transaction,
and then the cart's lines are put in the cache; a read goes cache →
database → cache. Losing the cache, or the app server that wrote it, loses
nothing: the next read comes from the database.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..db import schema
from .catalog import Catalog
from .store import ObjectCache, Through
from .values import ProductCard, format_price

log = logging.getLogger("sleigh.web.cart")

#: Most units of one product in one cart.
MAX_QUANTITY = 99
#: Most distinct products in one cart.
MAX_LINES = 100
PREFIX = "cart:"


class CartError(ValueError):
    """A change the cart refuses; the message is for the shopper."""


@dataclass
class Cart:
    """Product id → quantity, in the order they were first added."""

    id: int | None
    lines: dict[int, int] = field(default_factory=dict)
    changed: set[int] = field(default_factory=set)

    @property
    def count(self) -> int:
        return sum(self.lines.values())

    def add(self, product_id: int, quantity: int = 1) -> None:
        self.set(product_id, self.lines.get(product_id, 0) + quantity)

    def set(self, product_id: int, quantity: int) -> None:
        """Set a line's quantity; 0 removes it.

        :raises CartError: a quantity out of range, or one product too many.
        """
        if not 0 <= quantity <= MAX_QUANTITY:
            raise CartError(f"You can have from 1 to {MAX_QUANTITY} of one item in your cart.")
        if quantity and product_id not in self.lines and len(self.lines) >= MAX_LINES:
            raise CartError(f"Your cart holds at most {MAX_LINES} different items.")
        if quantity:
            self.lines[product_id] = quantity
        else:
            self.lines.pop(product_id, None)
        self.changed.add(product_id)


@dataclass(frozen=True)
class CartLineView:
    card: ProductCard
    quantity: int

    @property
    def total(self) -> str:
        return format_price(self.card.price_cents * self.quantity)

    @property
    def short(self) -> bool:
        """Fewer in stock than the shopper wants."""
        return self.card.available < self.quantity


@dataclass(frozen=True)
class CartView:
    """What cart templates receive."""

    lines: list[CartLineView]
    count: int
    subtotal_cents: int

    @property
    def subtotal(self) -> str:
        return format_price(self.subtotal_cents)


class Carts:
    """Loads, saves and shapes carts.

    :param ttl: how long a cart's lines stay in the object cache.
    """

    def __init__(
        self, engine: AsyncEngine, cache: ObjectCache | None, catalog: Catalog, ttl: float
    ) -> None:
        self.engine = engine
        self.catalog = catalog
        self.ttl = ttl
        self.through = Through(cache)

    async def load(self, cart_id: int | None) -> Cart:
        """The cart *cart_id* (an empty, unsaved cart for ``None`` or a cart gone)."""
        if cart_id is None:
            return Cart(None)
        found = await self.through.load(PREFIX, [cart_id], self.ttl, self._read)
        if cart_id not in found:
            return Cart(None)
        return Cart(cart_id, {int(p): int(q) for p, q in found[cart_id]})

    async def customer_cart(self, customer_id: int) -> int | None:
        """The id of *customer_id*'s open cart, if there is one."""
        query = (
            sa.select(schema.carts.c.id)
            .where(schema.carts.c.customer_id == customer_id, schema.carts.c.status == "open")
            .order_by(schema.carts.c.id.desc())
            .limit(1)
        )
        async with self.engine.connect() as conn:
            return (await conn.execute(query)).scalar_one_or_none()

    async def save(self, cart: Cart, *, customer_id: int | None = None) -> int:
        """Write the changed lines (creating the cart row if needed); the cart's id.

        :param customer_id: the signed-in customer, who then owns the cart (a guest
            cart saved for a customer becomes theirs: their open cart from now on).
        """
        now = datetime.now(UTC)
        async with self.engine.begin() as conn:
            if cart.id is None:
                values = {"customer_id": customer_id, "created_at": now, "updated_at": now}
                done = await conn.execute(schema.carts.insert().values(values))
                key = done.inserted_primary_key
                assert key is not None
                cart.id = int(key[0])
            else:
                changes: dict[str, object] = {"updated_at": now}
                if customer_id is not None:
                    changes["customer_id"] = customer_id
                await conn.execute(
                    schema.carts.update().where(schema.carts.c.id == cart.id).values(changes)
                )
            await _write_lines(conn, cart, now)
            lines = await _lines(conn, [cart.id])
        cart.changed.clear()
        await self.through.store(PREFIX, {cart.id: lines.get(cart.id, [])}, self.ttl)
        return cart.id

    async def merge(self, guest_id: int, customer_id: int) -> int:
        """Fold the guest cart into the customer's open cart (quantities add up).

        :returns: the customer's cart id (the guest cart, adopted, if they had none).
        """
        guest = await self.load(guest_id)
        target_id = await self.customer_cart(customer_id)
        if target_id is None or target_id == guest_id:
            guest.changed.update(guest.lines)
            return await self.save(guest, customer_id=customer_id) if guest.id else guest_id
        target = await self.load(target_id)
        for product_id, quantity in guest.lines.items():
            target.set(product_id, min(MAX_QUANTITY, target.lines.get(product_id, 0) + quantity))
        async with self.engine.begin() as conn:
            carts = schema.carts
            await conn.execute(carts.update().where(carts.c.id == guest_id).values(status="merged"))
        await self.through.forget(PREFIX, [guest_id])
        return await self.save(target)

    async def view(self, cart: Cart) -> CartView:
        """The cart as templates show it, with current prices and stock."""
        cards = {c.id: c for c in await self.catalog.cards(list(cart.lines))}
        lines = [CartLineView(cards[p], q) for p, q in cart.lines.items() if p in cards]
        subtotal = sum(line.card.price_cents * line.quantity for line in lines)
        return CartView(lines, sum(line.quantity for line in lines), subtotal)

    async def _read(self, ids: list[int]) -> dict[int, list[list[int]]]:
        async with self.engine.connect() as conn:
            return await _lines(conn, ids)


async def _lines(conn: AsyncConnection, ids: list[int]) -> dict[int, list[list[int]]]:
    """The lines of the open carts among *ids*: cart id → [[product id, quantity], ...]."""
    carts, lines = schema.carts, schema.cart_lines
    query = (
        sa.select(carts.c.id, lines.c.product_id, lines.c.quantity)
        .select_from(carts.outerjoin(lines, lines.c.cart_id == carts.c.id))
        .where(carts.c.id.in_(ids), carts.c.status == "open")
        .order_by(carts.c.id, lines.c.added_at, lines.c.product_id)
    )
    found: dict[int, list[list[int]]] = {}
    for cart_id, product_id, quantity in await conn.execute(query):
        entry = found.setdefault(cart_id, [])
        if product_id is not None:
            entry.append([product_id, quantity])
    return found


async def _write_lines(conn: AsyncConnection, cart: Cart, now: datetime) -> None:
    table = schema.cart_lines
    assert cart.id is not None
    for product_id in sorted(cart.changed):
        where = (table.c.cart_id == cart.id) & (table.c.product_id == product_id)
        quantity = cart.lines.get(product_id, 0)
        if quantity == 0:
            await conn.execute(table.delete().where(where))
            continue
        done = await conn.execute(table.update().where(where).values(quantity=quantity))
        if done.rowcount == 0:
            await conn.execute(
                table.insert().values(
                    cart_id=cart.id, product_id=product_id, quantity=quantity, added_at=now
                )
            )
