"""What a shopper asked a listing for, as the URL says it: words, sort, page, facets.

One vocabulary for the two listing pages: the search page (``/search``) and a
category page (``/c/<path>``), where the category is the path and there are
no words. Knows nothing of HTTP: the controller hands the query string to
:func:`parse_filters`, which raises :class:`BadFilter` naming the parameter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Final
from urllib.parse import quote_plus

from ...core_ext.search.model import AGE_BANDS, PRICE_BANDS
from .values import Category

__all__ = [
    "AGES",
    "BANDS",
    "BROWSE_SORTS",
    "SORTS",
    "BadFilter",
    "Filters",
    "parse_filters",
]

#: Sorts shoppers may choose on the search page, and their labels.
SORTS: Final = {
    "relevance": "Best match",
    "popularity": "Most popular",
    "price_asc": "Price: low to high",
    "price_desc": "Price: high to low",
    "newest": "Newest",
}
#: Sorts of a category page (no words, so no "best match").
BROWSE_SORTS: Final = {key: label for key, label in SORTS.items() if key != "relevance"}
#: Older names of the category page's sorts, still understood in links.
_SORT_ALIASES: Final = {"popular": "popularity", "price": "price_asc", "-price": "price_desc"}
MAX_QUERY: Final = 200
MAX_PAGE: Final = 400
MAX_BRANDS: Final = 20
MAX_AGE: Final = 99
#: Price bands by label: cents, low included, high excluded.
BANDS: Final = {label: (low, high) for label, low, high in PRICE_BANDS}
#: Age bands by label: years, both included.
AGES: Final = {label: (low, high) for label, low, high in AGE_BANDS}
SEARCH: Final = "/search"


class BadFilter(ValueError):
    """A listing parameter that is not valid; the message says which and why."""


@dataclass(frozen=True)
class Filters:
    """What the shopper asked for.

    :ivar age: an age band's label (``"3-5"``), or one age in years (``"6"``).
    :ivar base: the page's path: ``/search``, or a category page's ``/c/<path>``
        (whose category is then :attr:`category`, and never a parameter).
    """

    q: str = ""
    sort: str = "relevance"
    page: int = 1
    category: int | None = None
    brands: tuple[int, ...] = ()
    price: str | None = None
    age: str | None = None
    in_stock: bool = False
    base: str = SEARCH

    @property
    def browsing(self) -> bool:
        """A category page, not the search page."""
        return self.base != SEARCH

    @property
    def default_sort(self) -> str:
        return _default_sort(self.browsing)

    @property
    def sorts(self) -> dict[str, str]:
        """The sorts this page offers, and their labels."""
        return dict(BROWSE_SORTS if self.browsing else SORTS)

    @property
    def empty(self) -> bool:
        """Nothing asked for on the search page: no words and no filter."""
        return not self.browsing and self == Filters(sort=self.sort)

    @property
    def narrowed(self) -> bool:
        """Some filter besides the words (and a category page's own category) is set."""
        chosen = self.brands or self.price or self.age or self.in_stock
        return bool(chosen) or (not self.browsing and self.category is not None)

    @property
    def ages(self) -> tuple[int, int] | None:
        """The age range asked for, in years, both included."""
        if self.age is None:
            return None
        return AGES.get(self.age) or (int(self.age), int(self.age))

    @property
    def cents(self) -> tuple[int, int] | None:
        """The price range asked for, in cents, both included."""
        if self.price is None:
            return None
        low, high = BANDS[self.price]
        return low, high - 1

    def url(self, **changes: Any) -> str:
        """This page's URL for these filters with *changes* (back to page 1 unless given)."""
        # The fields as a dict rather than dataclasses.replace: a listing page makes
        # some thirty of these URLs, and replace() re-runs __init__ each time.
        unknown = changes.keys() - _FIELDS
        if unknown:
            raise TypeError(f"Filters has no field {', '.join(sorted(unknown))}")
        chosen = {**vars(self), "page": 1, **changes}
        browsing = chosen["base"] != SEARCH
        pairs: list[tuple[str, str | int]] = []
        if chosen["q"] and not browsing:
            pairs.append(("q", chosen["q"]))
        if chosen["sort"] != _default_sort(browsing):
            pairs.append(("sort", chosen["sort"]))
        if chosen["category"] is not None and not browsing:
            pairs.append(("category", chosen["category"]))
        pairs += [("brand", b) for b in chosen["brands"]]
        if chosen["price"] is not None:
            pairs.append(("price", chosen["price"]))
        if chosen["age"] is not None:
            pairs.append(("age", chosen["age"]))
        if chosen["in_stock"]:
            pairs.append(("in_stock", 1))
        if chosen["page"] > 1:
            pairs.append(("page", chosen["page"]))
        base: str = chosen["base"]
        return base + "?" + _query(pairs) if pairs else base

    def in_category(self, category: Category | None) -> str:
        """The URL of these filters in *category* (a category page's own, when browsing)."""
        if self.browsing and category is not None:
            return self.url(base=f"/c/{category.path}", category=category.id)
        return self.url(category=None if category is None else category.id)

    def toggle_brand(self, brand: int) -> str:
        brands = tuple(b for b in self.brands if b != brand)
        return self.url(brands=brands if brand in self.brands else (*self.brands, brand))

    def cleared(self) -> str:
        """The URL without any narrowing filter (a category page keeps its category)."""
        category = self.category if self.browsing else None
        return self.url(category=category, brands=(), price=None, age=None, in_stock=False)


def _query(pairs: list[tuple[str, str | int]]) -> str:
    """``urlencode(pairs)`` for names that need no quoting (this module's own)."""
    return "&".join(
        f"{name}={value}" if type(value) is int else f"{name}={quote_plus(str(value))}"
        for name, value in pairs
    )


def _default_sort(browsing: bool) -> str:
    return "popularity" if browsing else "relevance"


_FIELDS: Final = frozenset(f.name for f in fields(Filters))


def _number(params: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    raw = params.get(name, "")
    if raw == "":
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 20) or not low <= int(raw) <= high:
        raise BadFilter(f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def _sort(params: Mapping[str, str], browsing: bool) -> str:
    sort = params.get("sort", "") or ("popularity" if browsing else "relevance")
    if browsing:
        sort = _SORT_ALIASES.get(sort, sort)
    known = BROWSE_SORTS if browsing else SORTS
    if sort not in known:
        raise BadFilter(f"sort must be one of {', '.join(known)}")
    return sort


def _age(params: Mapping[str, str]) -> str | None:
    raw = params.get("age", "")
    if raw == "" or raw in AGES:
        return raw or None
    if raw.isascii() and raw.isdigit() and len(raw) <= 3 and int(raw) <= MAX_AGE:
        return str(int(raw))
    raise BadFilter(f"age must be one of {', '.join(AGES)}, or a whole number from 0 to {MAX_AGE}")


def parse_filters(
    params: Mapping[str, str], brands: Sequence[str], category: Category | None = None
) -> Filters:
    """The filters in a query string (*brands*: every ``brand`` value).

    :param category: the category of a category page (its words and ``category``
        parameter are then not read); ``None`` for the search page.
    :raises BadFilter: naming the parameter at fault.
    """
    q = " ".join(params.get("q", "").split()) if category is None else ""
    if len(q) > MAX_QUERY:
        raise BadFilter(f"a search is at most {MAX_QUERY} characters")
    price = params.get("price", "") or None
    if price is not None and price not in BANDS:
        raise BadFilter(f"price must be one of {', '.join(BANDS)}")
    if len(brands) > MAX_BRANDS or not all(
        b.isascii() and b.isdigit() and len(b) <= 12 for b in brands
    ):
        raise BadFilter(f"brand must be up to {MAX_BRANDS} brand numbers")
    return Filters(
        q=q,
        sort=_sort(params, category is not None),
        page=_number(params, "page", 1, MAX_PAGE) or 1,
        category=_number(params, "category", 0, 2**62) if category is None else category.id,
        brands=tuple(dict.fromkeys(int(b) for b in brands)),
        price=price,
        age=_age(params),
        in_stock=params.get("in_stock", "") in ("1", "on", "true"),
        base=SEARCH if category is None else f"/c/{category.path}",
    )
