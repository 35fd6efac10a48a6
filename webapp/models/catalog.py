"""The catalog model: categories, listings and products, from the database.

Models know nothing of HTTP. Each value here is immutable and shaped for
the views; the category tree (small, rarely changed) and best-seller lists
are kept in process for their TTL, products are read on demand.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ..db import schema

SORTS: dict[str, tuple[str, Callable[[], Sequence[Any]]]] = {
    "popular": (
        "Most popular",
        lambda: (schema.products.c.popularity.desc(), schema.products.c.id),
    ),
    "price": ("Price: low to high", lambda: (schema.products.c.price_cents, schema.products.c.id)),
    "-price": (
        "Price: high to low",
        lambda: (schema.products.c.price_cents.desc(), schema.products.c.id),
    ),
    "newest": (
        "Newest",
        lambda: (schema.products.c.created_at.desc(), schema.products.c.id.desc()),
    ),
}


@dataclass(frozen=True)
class Category:
    id: int
    parent_id: int | None
    slug: str
    name: str
    path: str
    depth: int
    children: list[Category] = field(default_factory=list, compare=False, repr=False)


@dataclass(frozen=True)
class CategoryTree:
    """Every category, by id and by path, with children in display order."""

    by_id: dict[int, Category]
    by_path: dict[str, Category]
    roots: list[Category]

    def ancestors(self, category: Category) -> list[Category]:
        """From the root down to *category*'s parent."""
        chain: list[Category] = []
        node = category
        while node.parent_id is not None:
            node = self.by_id[node.parent_id]
            chain.append(node)
        return chain[::-1]

    def subtree_ids(self, category: Category) -> list[int]:
        """*category*'s id and those of all its descendants."""
        ids, stack = [], [category]
        while stack:
            node = stack.pop()
            ids.append(node.id)
            stack.extend(node.children)
        return ids


@dataclass(frozen=True)
class ProductCard:
    """What a listing shows of one product."""

    id: int
    sku: str
    slug: str
    title: str
    price_cents: int
    image: str
    brand: str
    available: int

    @property
    def price(self) -> str:
        return format_price(self.price_cents)


@dataclass(frozen=True)
class Product(ProductCard):
    """Everything the product page shows."""

    description: str
    brand_slug: str
    category_id: int
    age_min: int
    age_max: int

    @property
    def age_range(self) -> str:
        if self.age_max >= 99:
            return f"{self.age_min}+ years"
        return f"{self.age_min}\u2013{self.age_max} years"

    @property
    def stock_label(self) -> str:
        if self.available <= 0:
            return "Out of stock"
        if self.available <= 5:
            return f"Only {self.available} left"
        return "In stock"


@dataclass(frozen=True)
class Listing:
    products: list[ProductCard]
    total: int
    page: int
    pages: int


def format_price(cents: int) -> str:
    return f"${cents // 100:,}.{cents % 100:02d}"


_CARD_COLUMNS = (
    schema.products.c.id,
    schema.products.c.sku,
    schema.products.c.slug,
    schema.products.c.title,
    schema.products.c.price_cents,
    schema.products.c.image,
    schema.brands.c.name.label("brand"),
    (
        sa.func.coalesce(schema.inventory.c.on_hand, 0)
        - sa.func.coalesce(schema.inventory.c.reserved, 0)
    ).label("available"),
)
_CARD_FROM = schema.products.join(schema.brands).outerjoin(schema.inventory)


class Catalog:
    """Reads the catalog for the storefront.

    :param engine: the shop's database.
    :param tree_ttl: seconds the category tree may be out of date.
    :param popular_ttl: seconds a best-seller list may be out of date.
    :param clock: monotonic clock, a parameter so tests control it.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        tree_ttl: float = 300.0,
        popular_ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.tree_ttl = tree_ttl
        self.popular_ttl = popular_ttl
        self._popular: dict[tuple[int, int | None], tuple[float, list[ProductCard]]] = {}
        self._clock = clock
        self._tree: CategoryTree | None = None
        self._tree_at = 0.0

    async def tree(self) -> CategoryTree:
        """The category tree, at most ``tree_ttl`` seconds old."""
        now = self._clock()
        if self._tree is None or now - self._tree_at > self.tree_ttl:
            self._tree = await self._load_tree()
            self._tree_at = now
        return self._tree

    async def _load_tree(self) -> CategoryTree:
        c = schema.categories.c
        query = sa.select(c.id, c.parent_id, c.slug, c.name, c.path, c.depth).order_by(
            c.depth, c.sort_order, c.name
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        by_id = {row.id: Category(**row._mapping) for row in rows}
        roots = []
        for cat in by_id.values():
            if cat.parent_id is None:
                roots.append(cat)
            else:
                by_id[cat.parent_id].children.append(cat)
        return CategoryTree(by_id, {cat.path: cat for cat in by_id.values()}, roots)

    async def listing(
        self, category: Category, *, sort: str = "popular", page: int = 1, size: int = 24
    ) -> Listing:
        """One page of the products in *category* and its descendants."""
        tree = await self.tree()
        where = schema.products.c.category_id.in_(tree.subtree_ids(category))
        query = (
            sa.select(*_CARD_COLUMNS)
            .select_from(_CARD_FROM)
            .where(where)
            .order_by(*SORTS[sort][1]())
            .limit(size)
            .offset((page - 1) * size)
        )
        count = sa.select(sa.func.count()).select_from(schema.products).where(where)
        async with self.engine.connect() as conn:
            total = (await conn.execute(count)).scalar_one()
            rows = (await conn.execute(query)).all()
        pages = max(1, -(-total // size))
        return Listing([ProductCard(**row._mapping) for row in rows], total, page, pages)

    async def popular(self, limit: int = 12, category: Category | None = None) -> list[ProductCard]:
        """The most popular products, in the whole shop or under *category*.

        Popularity moves slowly: a list is kept for ``popular_ttl`` seconds.
        """
        key = (limit, None if category is None else category.id)
        now = self._clock()
        hit = self._popular.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        cards = await self._load_popular(limit, category)
        self._popular[key] = (now + self.popular_ttl, cards)
        return cards

    async def _load_popular(self, limit: int, category: Category | None) -> list[ProductCard]:
        query = sa.select(*_CARD_COLUMNS).select_from(_CARD_FROM)
        if category is not None:
            tree = await self.tree()
            query = query.where(schema.products.c.category_id.in_(tree.subtree_ids(category)))
        query = query.order_by(*SORTS["popular"][1]()).limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [ProductCard(**row._mapping) for row in rows]

    async def product(self, product_id: int) -> Product | None:
        """One product with its brand and live stock, or ``None``."""
        p = schema.products.c
        query = (
            sa.select(
                *_CARD_COLUMNS,
                p.description,
                schema.brands.c.slug.label("brand_slug"),
                p.category_id,
                p.age_min,
                p.age_max,
            )
            .select_from(_CARD_FROM)
            .where(p.id == product_id)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else Product(**row._mapping)

    async def related(self, product: Product, limit: int = 6) -> list[ProductCard]:
        """Popular products from the same category, *product* excluded."""
        p = schema.products.c
        query = (
            sa.select(*_CARD_COLUMNS)
            .select_from(_CARD_FROM)
            .where(p.category_id == product.category_id, p.id != product.id)
            .order_by(*SORTS["popular"][1]())
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [ProductCard(**row._mapping) for row in rows]
