"""The facets of a listing page: each value with its count and the URL that narrows
to it (or widens back), and the filters in force, each with the URL that removes it.

Counts are over the whole match of the current filters, as ``sleigh-searchd``
gives them (:attr:`~sleigh.core_ext.search.model.Result.facets`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ...core_ext.search.model import AGE_BANDS, PRICE_BANDS
from .filters import AGES, BANDS, Filters
from .values import CategoryTree

__all__ = ["Chosen", "Facet", "FacetValue", "chosen", "facets"]

BRAND_FACET_SIZE: Final = 12
_OPEN: Final = 2**31 - 1


@dataclass(frozen=True)
class FacetValue:
    label: str
    count: int
    url: str
    selected: bool


@dataclass(frozen=True)
class Facet:
    """One facet: ``name`` (for ids), ``title``, its values, and the URL without it."""

    name: str
    title: str
    values: list[FacetValue]
    clear_url: str | None


@dataclass(frozen=True)
class Chosen:
    """A filter in force: what it is, and the URL of the page without it."""

    kind: str
    label: str
    remove_url: str


def price_label(label: str) -> str:
    low, high = BANDS[label]
    if high >= _OPEN:
        return f"${low // 100:,} and up"
    return f"${low // 100:,} to ${high // 100:,}"


def age_label(label: str) -> str:
    if label not in AGES:
        return f"Age {label}"
    low, high = AGES[label]
    return f"{low}+ years" if high >= 99 else f"{low}\u2013{high} years"


def _category_facet(
    filters: Filters, tree: CategoryTree, counts: Mapping[Any, int]
) -> Facet | None:
    chosen = tree.by_id.get(filters.category) if filters.category is not None else None
    shown = chosen.children if chosen is not None else tree.roots
    values = [
        FacetValue(c.name, counts[c.id], filters.in_category(c), False)
        for c in shown
        if counts.get(c.id)
    ]
    if not values and (chosen is None or filters.browsing):
        return None
    if filters.browsing:  # the page's own category: its sub-sections narrow it
        return Facet("category", "Section", values, None)
    parent = None if chosen is None or chosen.parent_id is None else tree.by_id[chosen.parent_id]
    clear = None if chosen is None else filters.in_category(parent)
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


def _band_facet(
    filters: Filters,
    name: str,
    bands: tuple[tuple[str, int, int], ...],
    counts: Mapping[Any, int],
) -> Facet:
    """The price or age facet: one value a band (only the bands with products)."""
    current = getattr(filters, name)
    labels = price_label if name == "price" else age_label
    values = [
        FacetValue(
            labels(label),
            counts.get(label, 0),
            filters.url(**{name: None if current == label else label}),
            current == label,
        )
        for label, _low, _high in bands
        if counts.get(label) or current == label
    ]
    clear = filters.url(**{name: None}) if current else None
    return Facet(name, "Price" if name == "price" else "Age", values, clear)


def _stock_facet(filters: Filters, in_stock: int) -> Facet:
    value = FacetValue(
        "In stock only", in_stock, filters.url(in_stock=not filters.in_stock), filters.in_stock
    )
    clear = filters.url(in_stock=False) if filters.in_stock else None
    return Facet("in_stock", "Availability", [value], clear)


def facets(
    filters: Filters,
    tree: CategoryTree,
    names: Mapping[int, str],
    counts: Mapping[str, Mapping[Any, int]],
    in_stock: int,
) -> list[Facet]:
    """Every facet with values to choose or a choice to undo, in the page's order.

    :param counts: the daemon's counts by facet name; *in_stock*: how many of the
        match are in stock.
    """
    found = [
        _category_facet(filters, tree, counts.get("category", {})),
        _brand_facet(filters, names, counts.get("brand", {})),
        _band_facet(filters, "price", PRICE_BANDS, counts.get("price_band", {})),
        _band_facet(filters, "age", AGE_BANDS, counts.get("age_band", {})),
        _stock_facet(filters, in_stock),
    ]
    return [f for f in found if f is not None and (f.values or f.clear_url)]


def chosen(filters: Filters, tree: CategoryTree, names: Mapping[int, str]) -> list[Chosen]:
    """The filters in force, each with the URL that removes it."""
    found: list[Chosen] = []
    section = tree.by_id.get(filters.category) if filters.category is not None else None
    if section is not None and not filters.browsing:
        found.append(Chosen("Section", section.name, filters.url(category=None)))
    found += [
        Chosen("Brand", names.get(b, f"Brand {b}"), filters.toggle_brand(b)) for b in filters.brands
    ]
    if filters.price is not None:
        found.append(Chosen("Price", price_label(filters.price), filters.url(price=None)))
    if filters.age is not None:
        found.append(Chosen("Age", age_label(filters.age), filters.url(age=None)))
    if filters.in_stock:
        found.append(Chosen("Availability", "In stock only", filters.url(in_stock=False)))
    return found
