"""The values that cross the index's boundary: documents in, queries in, results out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "AGE_BANDS",
    "FACETS",
    "PRICE_BANDS",
    "SORTS",
    "IndexInfo",
    "ProductDoc",
    "Query",
    "Result",
]

#: The plain sort orders; composed rules from the configuration add to these.
SORTS: Final = ("relevance", "price_asc", "price_desc", "popularity", "newest")

#: Facet names in :attr:`Result.facets`.
FACETS: Final = ("category", "brand", "price_band", "age_band")

#: Price bands in cents, ``(label, low, high)`` with *low* included and *high* excluded.
PRICE_BANDS: Final = (
    ("0-10", 0, 1000),
    ("10-25", 1000, 2500),
    ("25-50", 2500, 5000),
    ("50-100", 5000, 10000),
    ("100-250", 10000, 25000),
    ("250+", 25000, 2**31),
)

#: Age bands in years, ``(label, low, high)`` both included; a product counts in every
#: band its age range overlaps.
AGE_BANDS: Final = (
    ("0-2", 0, 2),
    ("3-5", 3, 5),
    ("6-8", 6, 8),
    ("9-12", 9, 12),
    ("13+", 13, 255),
)


@dataclass(frozen=True, slots=True)
class ProductDoc:
    """One product as the index sees it.

    :ivar category_path: ``(category_id, name)`` pairs from the root to the product's leaf.
    :ivar created: creation time, seconds since the epoch.
    """

    id: int
    title: str
    brand_id: int
    brand: str
    category_path: tuple[tuple[int, str], ...]
    description: str
    price_cents: int
    age_min: int
    age_max: int
    popularity: int
    created: int
    in_stock: bool


@dataclass(frozen=True, slots=True)
class Query:
    """Search conditions.

    ``text`` holds words, all required (AND); ``a OR b`` accepts either; ``-word``
    excludes; a quoted phrase requires all its words (positions are not stored, so
    their order and adjacency are not checked). With ``prefix`` the last word is
    completed from the dictionary. Empty text matches every product (browsing by
    filters). ``category`` selects its whole subtree; ``age`` selects products whose
    age range contains it, or with ``age_to`` (not below ``age``) whose age range
    overlaps ``age`` to ``age_to`` (both included, as in :data:`AGE_BANDS`); ``sort``
    is one of :data:`SORTS` or a rule named in the index's configuration.
    """

    text: str = ""
    prefix: bool = False
    category: int | None = None
    brands: tuple[int, ...] = ()
    price_min: int | None = None
    price_max: int | None = None
    age: int | None = None
    age_to: int | None = None
    in_stock: bool | None = None
    sort: str = "relevance"
    offset: int = 0
    limit: int = 20
    facets: bool = False


@dataclass(frozen=True, slots=True)
class Result:
    """The answer to a :class:`Query`.

    :ivar ids: product ids of the requested page, in order.
    :ivar total: the exact number of matching products.
    :ivar facets: per facet name, value → count over the whole match set (category
        and brand ids, band labels), or None if not asked for; a category counts the
        products of its whole subtree.
    :ivar suggestion: the query text with unknown words replaced by the nearest known
        words, or None.
    :ivar took_us: time spent in the index, in microseconds.
    """

    ids: list[int]
    total: int
    facets: dict[str, dict[int | str, int]] | None = None
    suggestion: str | None = None
    took_us: int = 0


@dataclass(frozen=True, slots=True)
class IndexInfo:
    """What an index file holds."""

    version: int
    built_at: float
    products: int
    terms: int
    size: int
    path: str = field(default="")
