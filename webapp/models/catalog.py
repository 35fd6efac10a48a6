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

A product page's data (:meth:`Catalog.product_page`) is kept in the worker
with the receipt of the reads it was made of, and handed out again while the
cache vouches that none of those objects was written or expired since
(:meth:`Through.still`): what a new read would give, for a comparison per
object instead of the reads and the building.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from . import queries
from .queries import SORTS
from .store import ObjectCache, Part, Reading, Through
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

__all__ = [
    "SORTS",
    "Catalog",
    "Category",
    "CategoryTree",
    "Listing",
    "Product",
    "ProductCard",
    "ProductPage",
]

#: How many related products a product page shows.
RELATED = 6
#: Cards a catalog keeps to hand out again (all are dropped when there would be more).
CARDS_KEPT = 20_000
#: Product pages' data a catalog keeps to hand out again (as the cards).
PAGES_KEPT = 10_000


@dataclass(frozen=True)
class TTLs:
    """Seconds each part may be out of step with the database."""

    tree: float = 300.0
    product: float = 21600.0
    stock: float = 10.0
    listing: float = 60.0
    price: float = 300.0


@dataclass(frozen=True)
class ProductPage:
    """What a product page shows: the product, the category tree, related cards."""

    product: Product
    tree: CategoryTree
    related: list[ProductCard]


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
        self.through = Through(cache, read_only=True)  # parts are values: never changed
        self._tree: tuple[list[list[Any]], CategoryTree] | None = None
        #: the last brand rows read and the names made of them
        self._brands: tuple[list[list[Any]], dict[int, str]] | None = None
        #: product id -> (info part, price, stock, the card made of them)
        self._cards: dict[int, tuple[list[Any], int, int, ProductCard]] = {}
        #: product id -> (the reads its page's data was made of, that data)
        self._pages: dict[int, tuple[Reading, ProductPage]] = {}

    async def tree(self) -> CategoryTree:
        """Every category. The rows still come through the cache on each call (so the
        tree is never staler than ``tree_ttl``); the tree built from them is reused
        while they are equal to the last ones (the tree is read-only after this)."""
        (found,) = await self.through.load_parts([self._tree_part()])
        return self._tree_of(found[""])

    async def brand_names(self) -> dict[int, str]:
        """Every brand's name by id, through the cache (as long as the category tree);
        the names are made again only when the rows change (read-only, as the tree)."""
        rows = await self.through.one(
            "brands:names", self.ttls.tree, lambda: queries.brand_rows(self.engine)
        )
        if self._brands is None or self._brands[0] is not rows:
            self._brands = (rows, {int(row[0]): str(row[1]) for row in rows})
        return self._brands[1]

    def _tree_part(self) -> Part[str, list[list[Any]]]:
        async def load(_: list[str]) -> dict[str, list[list[Any]]]:
            return {"": await queries.category_rows(self.engine)}

        return Part("cat:tree", [""], self.ttls.tree, load)

    def _tree_of(self, rows: list[list[Any]]) -> CategoryTree:
        if self._tree is not None and (self._tree[0] is rows or self._tree[0] == rows):
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

    async def cards(self, ids: list[int], reading: Reading | None = None) -> list[ProductCard]:
        """Listing cards for *ids*, in order; ids that no longer exist left out.
        *reading* notes the reads (:meth:`Through.load_parts`)."""
        infos, prices, stock = await self.through.load_parts(
            [self._info_part(ids), self._price_part(ids), self._stock_part(ids)], reading
        )
        return [
            self._card(infos[i], prices[i], stock.get(i, 0))
            for i in ids
            if i in infos and i in prices
        ]

    def _card(self, info: list[Any], price: int, available: int) -> ProductCard:
        """The card of these parts: the one made before while the cache hands out the
        same info object (it does until the entry is written) and the same price and
        stock (a frozen dataclass costs 1.5 µs to make)."""
        ident = info[0]
        made = self._cards.get(ident)
        if made is not None and made[0] is info and made[1] == price and made[2] == available:
            return made[3]
        if len(self._cards) >= CARDS_KEPT:
            self._cards.clear()
        new = card(info, price, available)
        self._cards[ident] = (info, price, available, new)
        return new

    async def product(self, product_id: int) -> Product | None:
        """One product, every part of it, with live stock; or ``None``."""
        ids = [product_id]
        infos, prices, descriptions, stock = await self.through.load_parts(
            [
                self._info_part(ids),
                self._price_part(ids),
                self._description_part(ids),
                self._stock_part(ids),
            ]
        )
        return self._product_of(product_id, infos, prices, descriptions, stock)

    async def product_page(self, product_id: int) -> ProductPage | None:
        """Everything a product page shows, or ``None`` if there is no such product.

        The tree, the product's parts and the related ids are read from the cache in
        one call, the related products' cards in a second one; or the data made of them
        before is handed out again while the cache vouches for every one of those reads
        (see the module).
        """
        kept = self._pages.get(product_id)
        if kept is not None and self.through.still(kept[0]):
            return kept[1]
        ids = [product_id]
        reading = Reading()
        tree_rows, infos, prices, descriptions, stock, related = await self.through.load_parts(
            [
                self._tree_part(),
                self._info_part(ids),
                self._price_part(ids),
                self._description_part(ids),
                self._stock_part(ids),
                self._related_part(product_id, RELATED),
            ],
            reading,
        )
        item = self._product_of(product_id, infos, prices, descriptions, stock)
        if item is None:
            return None
        cards = await self.cards(related.get(product_id, []), reading)
        page = ProductPage(item, self._tree_of(tree_rows[""]), cards)
        if reading.receipt.complete:
            if len(self._pages) >= PAGES_KEPT:
                self._pages.clear()
            self._pages[product_id] = (reading, page)
        return page

    @staticmethod
    def _product_of(
        product_id: int,
        infos: dict[int, list[Any]],
        prices: dict[int, int],
        descriptions: dict[int, str],
        stock: dict[int, int],
    ) -> Product | None:
        if product_id not in infos or product_id not in prices:
            return None
        return product(
            infos[product_id],
            prices[product_id],
            stock.get(product_id, 0),
            descriptions.get(product_id, ""),
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

    async def related(self, item: Product, limit: int = RELATED) -> list[ProductCard]:
        """Popular products from the same category, *item* left out."""
        (found,) = await self.through.load_parts([self._related_part(item.id, limit)])
        return await self.cards(found.get(item.id, []))

    async def stock_now(self, ids: list[int]) -> dict[int, int]:
        """Units available now, from the database (not the cache): after a change."""
        return await queries.stock(self.engine, ids)

    async def forget_stock(self, ids: list[int]) -> None:
        """Drop cached stock levels that just changed (an order, a sell-out)."""
        await self.through.forget("inv:", ids)

    def _info_part(self, ids: list[int]) -> Part[int, list[Any]]:
        return Part(
            f"info{INFO_VERSION}:",
            ids,
            self.ttls.product,
            lambda missing: queries.infos(self.engine, missing),
        )

    def _description_part(self, ids: list[int]) -> Part[int, str]:
        return Part(
            "desc:",
            ids,
            self.ttls.product,
            lambda missing: queries.descriptions(self.engine, missing),
        )

    def _price_part(self, ids: list[int]) -> Part[int, int]:
        return Part(
            "price:", ids, self.ttls.price, lambda missing: queries.prices(self.engine, missing)
        )

    def _stock_part(self, ids: list[int]) -> Part[int, int]:
        return Part(
            "inv:", ids, self.ttls.stock, lambda missing: queries.stock(self.engine, missing)
        )

    def _related_part(self, product_id: int, limit: int) -> Part[int, list[int]]:
        """Related ids under ``rel:<limit>:<id>``."""

        async def load(missing: list[int]) -> dict[int, list[int]]:
            return {i: await queries.related(self.engine, i, limit) for i in missing}

        return Part(f"rel:{limit}:", [product_id], self.ttls.listing, load)
