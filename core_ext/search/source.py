"""Reading the products to index from the database."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ...webapp.db import schema
from .model import ProductDoc

__all__ = ["load_products"]


async def load_products(engine: AsyncEngine) -> list[ProductDoc]:
    """Every product with its brand, category path and stock, as the index needs it."""
    c = schema.categories.c
    async with engine.connect() as conn:
        tree = {
            row.id: (row.parent_id, row.name)
            for row in await conn.execute(sa.select(c.id, c.parent_id, c.name))
        }
        rows = (await conn.execute(_PRODUCTS)).all()
    paths: dict[int, tuple[tuple[int, str], ...]] = {}
    return [
        ProductDoc(
            id=row.id,
            title=row.title,
            brand_id=row.brand_id,
            brand=row.brand,
            category_path=_path(tree, row.category_id, paths),
            description=row.description,
            price_cents=row.price_cents,
            age_min=row.age_min,
            age_max=row.age_max,
            popularity=row.popularity,
            created=_epoch(row.created_at),
            in_stock=int(row.available) > 0,
        )
        for row in rows
    ]


def _products_query() -> sa.Select[Any]:
    """Every product's indexed columns, its brand's name and its available stock, by id."""
    b, p, i = (t.c for t in (schema.brands, schema.products, schema.inventory))
    return (
        sa.select(
            p.id,
            p.title,
            p.brand_id,
            b.name.label("brand"),
            p.category_id,
            p.description,
            p.price_cents,
            p.age_min,
            p.age_max,
            p.popularity,
            p.created_at,
            sa.func.coalesce(i.on_hand - i.reserved, 0).label("available"),
        )
        .select_from(schema.products.join(schema.brands).outerjoin(schema.inventory))
        .order_by(p.id)
    )


_PRODUCTS = _products_query()


def _epoch(value: datetime | None) -> int:
    return int(value.timestamp()) if value is not None else 0


def _path(
    tree: dict[int, tuple[int | None, str]], leaf: int, memo: dict[int, tuple[tuple[int, str], ...]]
) -> tuple[tuple[int, str], ...]:
    found = memo.get(leaf)
    if found is None:
        parent, name = tree[leaf]
        found = (*(_path(tree, parent, memo) if parent is not None else ()), (leaf, name))
        memo[leaf] = found
    return found
