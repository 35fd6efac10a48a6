"""The catalog model: categories, listings and products.

Models know nothing of HTTP. Every read goes cache → database → cache
(:class:`~sleigh.webapp.models.store.Through`), and a product is split
into parts that change at different rates, each with its own TTL:

=============  ==========================================  ==============
key            part                                        TTL ([web])
=============  ==========================================  ==============
``cat:tree``   every category                              ``tree_ttl``
``info2:ID``   title, image, brand, category, ages, SKU    ``product_ttl``
``desc:ID``    the description (product pages only)        ``product_ttl``
``price:ID``   the price in cents                          ``price_ttl``
``inv:ID``     units available                             ``stock_ttl``
``list:...``   one page of ids of a listing, and total     ``listing_ttl``
``facets:...`` a listing's facet counts (no search daemon)  ``listing_ttl``
``pop:...``    ids of the best sellers                     ``listing_ttl``
``rel:ID``     ids of related products                     ``listing_ttl``
=============  ==========================================  ==============

Each page loads only the parts it shows (a listing never loads a
description), and every load notes its TTL (:mod:`.freshness`): a page
may be cached by a proxy no longer than the shortest of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from . import queries
from .queries import SORTS
from .store import ObjectCache, Through
from .values import (
    INFO_VERSION,
    Category,
    CategoryTree,
    Listing,
    Narrowing,
    Product,
    ProductCard,
    card,
    product,
)

__all__ = ["SORTS", "Catalog", "Category", "CategoryTree", "Listing", "Product", "ProductCard"]


@dataclass(frozen=True)
class TTLs:
    """Seconds each part may be out of step with the database."""

    tree: float = 300.0
    product: float = 21600.0
    stock: float = 10.0
    listing: float = 60.0
    price: float = 300.0


class Catalog:
    """Reads the catalog for the storefront.

    :param engine: the shop's database (the truth).
    :param cache: the host's object cache, or ``None`` to read the database only.
    """

    def __init__(
        self, engine: AsyncEngine, cache: ObjectCache | None = None, ttls: TTLs | None = None
    ) -> None:
        self.engine = engine
        self.ttls = ttls or TTLs()
        self.through = Through(cache)
        self._tree: tuple[list[list[Any]], CategoryTree] | None = None

    async def tree(self) -> CategoryTree:
        """Every category. The rows still come through the cache on each call (so the
        tree is never staler than ``tree_ttl``); the tree built from them is reused
        while they are equal to the last ones (the tree is read-only after this)."""
        rows = await self.through.one(
            "cat:tree", self.ttls.tree, lambda: queries.category_rows(self.engine)
        )
        if self._tree is not None and self._tree[0] == rows:
            return self._tree[1]
        tree = self._build_tree(rows)
        self._tree = (rows, tree)
        return tree

    @staticmethod
    def _build_tree(rows: list[list[Any]]) -> CategoryTree:
        by_id = {row[0]: Category(*row) for row in rows}
        roots = []
        for cat in by_id.values():
            if cat.parent_id is None:
                roots.append(cat)
            else:
                by_id[cat.parent_id].children.append(cat)
        return CategoryTree(by_id, {cat.path: cat for cat in by_id.values()}, roots)

    async def cards(self, ids: list[int]) -> list[ProductCard]:
        """Listing cards for *ids*, in order; ids that no longer exist left out."""
        infos = await self._infos(ids)
        found = [i for i in ids if i in infos]
        prices = await self._prices(found)
        stock = await self._stock(found)
        return [card(infos[i], prices[i], stock.get(i, 0)) for i in found if i in prices]

    async def product(self, product_id: int) -> Product | None:
        """One product, every part of it, with live stock; or ``None``."""
        ids = [product_id]
        infos = await self._infos(ids)
        prices = await self._prices(ids)
        descriptions = await self.through.load(
            "desc:",
            ids,
            self.ttls.product,
            lambda missing: queries.descriptions(self.engine, missing),
        )
        if product_id not in infos or product_id not in prices:
            return None
        stock = await self._stock(ids)
        return product(
            infos[product_id], prices[product_id], stock[product_id], descriptions[product_id]
        )

    async def listing(
        self,
        category: Category,
        *,
        sort: str = "popularity",
        page: int = 1,
        size: int = 24,
        narrowing: Narrowing | None = None,
    ) -> Listing:
        """One page of the products in *category* and its descendants (and *narrowing*)."""
        tree = await self.tree()
        subtree = tree.subtree_ids(category)
        narrowing = narrowing or Narrowing()
        key = f"list:{category.id}:{sort}:{page}:{size}{narrowing.key}"
        found = await self.through.one(
            key,
            self.ttls.listing,
            lambda: queries.listing(self.engine, subtree, sort, (page - 1) * size, size, narrowing),
        )
        total = int(found["total"])
        return Listing(await self.cards(found["ids"]), total, page, max(1, -(-total // size)))

    async def facet_counts(
        self, category: Category, narrowing: Narrowing
    ) -> tuple[dict[str, dict[Any, int]], int]:
        """The database's counts over what :meth:`listing` lists, as the search daemon
        counts its facets (a sub-category counts its whole subtree); and how many of
        those products are in stock."""
        tree = await self.tree()
        found = await self.through.one(
            f"facets:{category.id}{narrowing.key}",
            self.ttls.listing,
            lambda: queries.facet_counts(self.engine, tree.subtree_ids(category), narrowing),
        )
        counts = {
            name: {k: int(n) for k, n in found[name]}
            for name in ("brand", "price_band", "age_band")
        }
        leaves = {int(k): int(n) for k, n in found["category"]}
        counts["category"] = {
            c.id: sum(leaves.get(i, 0) for i in tree.subtree_ids(c)) for c in category.children
        }
        return counts, int(found["in_stock"][0][0])

    async def popular(self, limit: int = 12, category: Category | None = None) -> list[ProductCard]:
        """The most popular products, in the whole shop or under *category*."""
        subtree = None
        if category is not None:
            subtree = (await self.tree()).subtree_ids(category)
        key = f"pop:{category.id if category else 'all'}:{limit}"
        ids = await self.through.one(
            key, self.ttls.listing, lambda: queries.popular(self.engine, subtree, limit)
        )
        return await self.cards(ids)

    async def related(self, item: Product, limit: int = 6) -> list[ProductCard]:
        """Popular products from the same category, *item* left out."""
        ids = await self.through.one(
            f"rel:{item.id}:{limit}",
            self.ttls.listing,
            lambda: queries.related(self.engine, item.id, item.category_id, limit),
        )
        return await self.cards(ids)

    async def stock_now(self, ids: list[int]) -> dict[int, int]:
        """Units available now, from the database (not the cache): after a change."""
        return await queries.stock(self.engine, ids)

    async def forget_stock(self, ids: list[int]) -> None:
        """Drop cached stock levels that just changed (an order, a sell-out)."""
        await self.through.forget("inv:", ids)

    async def _infos(self, ids: list[int]) -> dict[int, list[Any]]:
        return await self.through.load(
            f"info{INFO_VERSION}:",
            ids,
            self.ttls.product,
            lambda missing: queries.infos(self.engine, missing),
        )

    async def _descriptions(self, ids: list[int]) -> dict[int, str]:
        return await self.through.load(
            "desc:",
            ids,
            self.ttls.product,
            lambda missing: queries.descriptions(self.engine, missing),
        )

    async def _prices(self, ids: list[int]) -> dict[int, int]:
        return await self.through.load(
            "price:", ids, self.ttls.price, lambda missing: queries.prices(self.engine, missing)
        )

    async def _stock(self, ids: list[int]) -> dict[int, int]:
        return await self.through.load(
            "inv:", ids, self.ttls.stock, lambda missing: queries.stock(self.engine, missing)
        )
