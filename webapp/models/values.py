"""The catalog's values: immutable, shaped for the views, built from cached parts."""

from __future__ import annotations

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


#: The fields of a product's core part (everything but live stock), in the
#: order the part is cached: a list, not a dict, so the field names are not
#: stored in every entry (about 100 bytes less) and a direct read decodes it
#: in a third of the time (measured: 12 fields, ~1 KB: 373 ns against 1137 ns).
#: Changing this tuple means changing ``CORE_VERSION`` too.
CORE_FIELDS = (
    "id",
    "sku",
    "slug",
    "title",
    "price_cents",
    "image",
    "brand",
    "description",
    "brand_slug",
    "category_id",
    "age_min",
    "age_max",
)
#: Part of the cache key of a core part, so entries of another shape are never read.
CORE_VERSION = 1
_CARD_COUNT = 7  # the card's fields are the first seven, in ProductCard's order


def card(core: Sequence[Any], available: int) -> ProductCard:
    """A listing card from a product's core part and its stock."""
    return ProductCard(*core[:_CARD_COUNT], available)  # type: ignore[call-arg]


def product(core: Sequence[Any], available: int) -> Product:
    """The product page's value from a product's core part and its stock."""
    return Product(*core[:_CARD_COUNT], available, *core[_CARD_COUNT:])  # type: ignore[call-arg]


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
