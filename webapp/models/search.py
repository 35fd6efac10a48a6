"""The listing pages' model: the search page and category pages, answered by
``sleigh-searchd``, with facets to narrow by; a category page's SQL fallback.

Knows nothing of HTTP: the controller parses the query string into
:class:`~.filters.Filters` (:func:`~.filters.parse_filters` raises
:class:`~.filters.BadFilter`), and :func:`run` asks ``sleigh-searchd``
(through the client the web tier holds) and loads the cards through the
catalog's cache. When no daemon answers, :func:`listed` shows a category
page from the database: the same filters, sorts, pages and facet counts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from ...daemons.search.client import AsyncSearchClient, SearchResult
from .catalog import Catalog
from .facets import Chosen, Facet, FacetValue, chosen, facets
from .filters import BROWSE_SORTS, SORTS, BadFilter, Filters, parse_filters
from .values import Category, Narrowing, ProductCard

__all__ = [
    "BROWSE_SORTS",
    "SORTS",
    "BadFilter",
    "Chosen",
    "Facet",
    "FacetValue",
    "Filters",
    "SearchPage",
    "listed",
    "parse_filters",
    "run",
]

_FACETS: Final = ("category", "brand", "price_band", "age_band")


@dataclass(frozen=True)
class SearchPage:
    """Everything a listing page shows."""

    filters: Filters
    products: list[ProductCard]
    total: int
    pages: int
    facets: list[Facet]
    chosen: list[Chosen]
    suggestion: str | None
    brand_names: dict[int, str]
    category: Category | None

    @property
    def sections(self) -> bool:
        """A facet lists sub-sections (with counts)."""
        return any(f.name == "category" for f in self.facets)


async def _all(calls: Sequence[Awaitable[SearchResult]]) -> list[SearchResult]:
    """Every answer, in order; on the first failure the others are cancelled (and
    their own failures collected), then it is raised."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return [await task for task in tasks]
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _search(
    client: AsyncSearchClient, filters: Filters, size: int
) -> tuple[SearchResult, dict[str, Any], int]:
    """The page, its facet counts, and how many of the match are in stock.

    Brands are chosen any of several, so their counts are over the match without
    the brand filter (what choosing one more brand would add); the other counts
    are over the match itself.
    """
    ages = filters.ages
    stock = True if filters.in_stock else None
    conditions: dict[str, Any] = {
        "category": filters.category,
        "price": filters.cents,
        "age": None if ages is None else ages[0],
        "age_to": None if ages is None else ages[1],
    }
    calls = [
        client.search(
            filters.q,
            **conditions,
            brands=filters.brands,
            in_stock=stock,
            sort=filters.sort,
            offset=(filters.page - 1) * size,
            limit=size,
            facets=_FACETS,
        )
    ]
    if not filters.in_stock:
        calls.append(
            client.search(filters.q, **conditions, brands=filters.brands, in_stock=True, limit=0)
        )
    if filters.brands:
        calls.append(
            client.search(filters.q, **conditions, in_stock=stock, limit=0, facets=("brand",))
        )
    result, *more = await _all(calls)
    counts = dict(result.facets or {})
    if filters.brands:
        counts["brand"] = (more.pop().facets or {}).get("brand", {})
    return result, counts, more[0].total if more else result.total


async def run(
    client: AsyncSearchClient,
    catalog: Catalog,
    filters: Filters,
    size: int,
) -> SearchPage:
    """Search, then load the page's cards and name the facets.

    :raises SearchUnavailable: if no search daemon answers.
    :raises BadRequest: if the daemon refuses the search (a page too deep).
    """
    result, counts, in_stock = await _search(client, filters, size)
    tree = await catalog.tree()
    names = await catalog.brand_names()
    return SearchPage(
        filters=filters,
        products=await catalog.cards(result.ids),
        total=result.total,
        pages=max(1, -(-result.total // size)),
        facets=facets(filters, tree, names, counts, in_stock),
        chosen=chosen(filters, tree, names),
        suggestion=result.suggestion,
        brand_names=names,
        category=tree.by_id.get(filters.category) if filters.category is not None else None,
    )


async def listed(catalog: Catalog, category: Category, filters: Filters, size: int) -> SearchPage:
    """A category page from the database: the same filters, sorts, pages and facets."""
    narrowing = Narrowing(filters.brands, filters.cents, filters.ages, filters.in_stock)
    listing = await catalog.listing(
        category, sort=filters.sort, page=filters.page, size=size, narrowing=narrowing
    )
    counts, in_stock = await catalog.facet_counts(category, narrowing)
    if narrowing.brands:  # any of several: counted without the brand filter, as run() does
        others, _ = await catalog.facet_counts(category, replace(narrowing, brands=()))
        counts["brand"] = others["brand"]
    tree = await catalog.tree()
    names = await catalog.brand_names()
    return SearchPage(
        filters=filters,
        products=listing.products,
        total=listing.total,
        pages=listing.pages,
        facets=facets(filters, tree, names, counts, in_stock),
        chosen=chosen(filters, tree, names),
        suggestion=None,
        brand_names=names,
        category=category,
    )
