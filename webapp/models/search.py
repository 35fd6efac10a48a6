"""The search page's model: filters from the URL, the daemon's answer, facets to narrow by.

Knows nothing of HTTP: the controller parses the query string into
:class:`Filters` (:func:`parse_filters` raises :class:`BadFilter`), and
:func:`run` asks ``sleigh-searchd`` (through the client the web tier holds)
and loads the cards through the catalog's cache.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final
from urllib.parse import urlencode

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ...core_ext.search.model import PRICE_BANDS
from ...daemons.search.client import AsyncSearchClient
from ..db import schema
from .catalog import Catalog
from .values import Category, CategoryTree, ProductCard

__all__ = [
    "SORTS",
    "BadFilter",
    "Facet",
    "FacetValue",
    "Filters",
    "SearchPage",
    "parse_filters",
    "run",
]

#: Sorts shoppers may choose on the search page, and their labels.
SORTS: Final = {
    "relevance": "Best match",
    "popularity": "Most popular",
    "price_asc": "Price: low to high",
    "price_desc": "Price: high to low",
    "newest": "Newest",
}
MAX_QUERY: Final = 200
MAX_PAGE: Final = 400
MAX_BRANDS: Final = 20
BRAND_FACET_SIZE: Final = 12
_BANDS: Final = {label: (low, high) for label, low, high in PRICE_BANDS}
_FACETS: Final = ("category", "brand", "price_band")


class BadFilter(ValueError):
    """A search parameter that is not valid; the message says which and why."""


@dataclass(frozen=True)
class Filters:
    """What the shopper asked for, as the URL says it."""

    q: str = ""
    sort: str = "relevance"
    page: int = 1
    category: int | None = None
    brands: tuple[int, ...] = ()
    price: str | None = None
    age: int | None = None
    in_stock: bool = False

    @property
    def empty(self) -> bool:
        """Nothing asked for: no words and no filter."""
        return self == Filters(sort=self.sort)

    @property
    def narrowed(self) -> bool:
        """Some filter besides the words is set."""
        return replace(self, q="", sort="relevance", page=1) != Filters()

    def url(self, **changes: Any) -> str:
        """``/search?...`` for these filters with *changes* (back to page 1 unless given)."""
        chosen = replace(self, **{"page": 1, **changes})
        pairs: list[tuple[str, str | int]] = []
        if chosen.q:
            pairs.append(("q", chosen.q))
        if chosen.sort != "relevance":
            pairs.append(("sort", chosen.sort))
        if chosen.category is not None:
            pairs.append(("category", chosen.category))
        pairs += [("brand", b) for b in chosen.brands]
        if chosen.price is not None:
            pairs.append(("price", chosen.price))
        if chosen.age is not None:
            pairs.append(("age", chosen.age))
        if chosen.in_stock:
            pairs.append(("in_stock", 1))
        if chosen.page > 1:
            pairs.append(("page", chosen.page))
        return "/search?" + urlencode(pairs) if pairs else "/search"

    def toggle_brand(self, brand: int) -> str:
        brands = tuple(b for b in self.brands if b != brand)
        return self.url(brands=brands if brand in self.brands else (*self.brands, brand))


def _number(params: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    raw = params.get(name, "")
    if raw == "":
        return None
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise BadFilter(f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def parse_filters(params: Mapping[str, str], brands: Sequence[str]) -> Filters:
    """The filters in a query string (*brands*: every ``brand`` value).

    :raises BadFilter: naming the parameter at fault.
    """
    q = " ".join(params.get("q", "").split())
    if len(q) > MAX_QUERY:
        raise BadFilter(f"a search is at most {MAX_QUERY} characters")
    sort = params.get("sort", "") or "relevance"
    if sort not in SORTS:
        raise BadFilter(f"sort must be one of {', '.join(SORTS)}")
    price = params.get("price", "") or None
    if price is not None and price not in _BANDS:
        raise BadFilter(f"price must be one of {', '.join(_BANDS)}")
    if len(brands) > MAX_BRANDS or not all(b.isdigit() and len(b) <= 12 for b in brands):
        raise BadFilter(f"brand must be up to {MAX_BRANDS} brand numbers")
    return Filters(
        q=q,
        sort=sort,
        page=_number(params, "page", 1, MAX_PAGE) or 1,
        category=_number(params, "category", 0, 2**62),
        brands=tuple(dict.fromkeys(int(b) for b in brands)),
        price=price,
        age=_number(params, "age", 0, 99),
        in_stock=params.get("in_stock", "") in ("1", "on", "true"),
    )


@dataclass(frozen=True)
class FacetValue:
    label: str
    count: int
    url: str
    selected: bool


@dataclass(frozen=True)
class Facet:
    name: str
    title: str
    values: list[FacetValue]
    clear_url: str | None


@dataclass(frozen=True)
class SearchPage:
    """Everything the search page shows."""

    filters: Filters
    products: list[ProductCard]
    total: int
    pages: int
    facets: list[Facet]
    suggestion: str | None
    brand_names: dict[int, str]
    category: Category | None


async def brand_names(catalog: Catalog, engine: AsyncEngine) -> dict[int, str]:
    """Every brand's name by id, through the cache (as long as the category tree)."""

    async def load() -> list[list[Any]]:
        b = schema.brands.c
        async with engine.connect() as conn:
            return [list(row) for row in await conn.execute(sa.select(b.id, b.name))]

    rows = await catalog.through.one("brands:names", catalog.ttls.tree, load)
    return {int(row[0]): str(row[1]) for row in rows}


def _price_label(label: str) -> str:
    low, high = _BANDS[label]
    if high >= 2**31 - 1:
        return f"${low // 100:,} and up"
    return f"${low // 100:,} to ${high // 100:,}"


def _category_facet(
    filters: Filters, tree: CategoryTree, counts: Mapping[Any, int]
) -> Facet | None:
    chosen = tree.by_id.get(filters.category) if filters.category is not None else None
    shown = chosen.children if chosen is not None else tree.roots
    values = [
        FacetValue(c.name, counts[c.id], filters.url(category=c.id), False)
        for c in shown
        if counts.get(c.id)
    ]
    if not values and chosen is None:
        return None
    clear = None if chosen is None else filters.url(category=chosen.parent_id)
    return Facet("category", chosen.name if chosen else "Section", values, clear)


def _brand_facet(filters: Filters, names: Mapping[int, str], counts: Mapping[Any, int]) -> Facet:
    top = sorted(counts.items(), key=lambda kv: (-kv[1], names.get(int(kv[0]), "")))
    ids = [int(k) for k, _ in top[:BRAND_FACET_SIZE]]
    ids += [b for b in filters.brands if b not in ids]
    values = [
        FacetValue(
            names.get(b, f"Brand {b}"),
            counts.get(b, 0),
            filters.toggle_brand(b),
            b in filters.brands,
        )
        for b in ids
    ]
    clear = filters.url(brands=()) if filters.brands else None
    return Facet("brand", "Brand", values, clear)


def _price_facet(filters: Filters, counts: Mapping[Any, int]) -> Facet:
    values = [
        FacetValue(
            _price_label(label),
            counts.get(label, 0),
            filters.url(price=None if filters.price == label else label),
            filters.price == label,
        )
        for label, _low, _high in PRICE_BANDS
        if counts.get(label) or filters.price == label
    ]
    return Facet("price", "Price", values, filters.url(price=None) if filters.price else None)


async def run(
    client: AsyncSearchClient,
    catalog: Catalog,
    engine: AsyncEngine,
    filters: Filters,
    size: int,
) -> SearchPage:
    """Search, then load the page's cards and name the facets.

    :raises SearchUnavailable: if no search daemon answers.
    :raises BadRequest: if the daemon refuses the search (a page too deep).
    """
    price = _BANDS.get(filters.price) if filters.price else None
    result = await client.search(
        filters.q,
        category=filters.category,
        brands=filters.brands,
        price=None if price is None else (price[0], price[1] - 1),
        age=filters.age,
        in_stock=True if filters.in_stock else None,
        sort=filters.sort,
        offset=(filters.page - 1) * size,
        limit=size,
        facets=_FACETS,
    )
    tree = await catalog.tree()
    names = await brand_names(catalog, engine)
    raw = result.facets or {}
    facets = [
        _category_facet(filters, tree, raw.get("category", {})),
        _brand_facet(filters, names, raw.get("brand", {})),
        _price_facet(filters, raw.get("price_band", {})),
    ]
    return SearchPage(
        filters=filters,
        products=await catalog.cards(result.ids),
        total=result.total,
        pages=max(1, -(-result.total // size)),
        facets=[f for f in facets if f is not None and (f.values or f.clear_url)],
        suggestion=result.suggestion,
        brand_names=names,
        category=tree.by_id.get(filters.category) if filters.category is not None else None,
    )
