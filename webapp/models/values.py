"""The catalog's values: immutable, shaped for the views, built from cached parts."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


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


#: The fields of a product's info part (what changes rarely: hours), in the
#: order the part is cached: a list, not a dict, so the field names are not
#: stored in every entry and a direct read decodes it about three times
#: faster. Changing this tuple means changing ``INFO_VERSION`` too.
INFO_FIELDS = (
    "id",
    "sku",
    "slug",
    "title",
    "image",
    "brand",
    "brand_slug",
    "category_id",
    "age_min",
    "age_max",
)
#: Part of the cache key of an info part, so entries of another shape are never read.
INFO_VERSION = 2


def card(info: Sequence[Any], price_cents: int, available: int) -> ProductCard:
    """A listing card from a product's info part, its price and its stock."""
    ident, sku, slug, title, image, brand = info[:6]
    return ProductCard(ident, sku, slug, title, price_cents, image, brand, available)


def product(info: Sequence[Any], price_cents: int, available: int, description: str) -> Product:
    """The product page's value from all four parts of a product."""
    ident, sku, slug, title, image, brand, brand_slug, category_id, age_min, age_max = info
    return Product(
        ident,
        sku,
        slug,
        title,
        price_cents,
        image,
        brand,
        available,
        description,
        brand_slug,
        category_id,
        age_min,
        age_max,
    )


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
class Narrowing:
    """Conditions on a listing besides its category.

    :ivar cents: price range, both ends included; *ages*: years a product's age
        range must overlap, both ends included.
    """

    brands: tuple[int, ...] = ()
    cents: tuple[int, int] | None = None
    ages: tuple[int, int] | None = None
    in_stock: bool = False

    @property
    def key(self) -> str:
        """A cache key suffix: empty for no narrowing, else every condition."""
        if self == Narrowing():
            return ""
        brands = ",".join(map(str, sorted(self.brands)))
        return f":b{brands}:p{self.cents}:a{self.ages}:s{int(self.in_stock)}".replace(" ", "")


@dataclass(frozen=True)
class Listing:
    products: list[ProductCard]
    total: int
    page: int
    pages: int


@functools.lru_cache(maxsize=8192)
def format_price(cents: int) -> str:
    """``$1,234.56`` for 123456 (kept: a page formats the same few prices again and again)."""
    return f"${cents // 100:,}.{cents % 100:02d}"
