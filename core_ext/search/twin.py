"""The query engine in pure Python: the twin of the compiled ``_engine``.

Written to be obviously right rather than fast: it decodes whole posting lists
into dictionaries. The compiled engine must return exactly what this one does.
Scores are summed in the same order in both (clauses in plan order, alternatives
in term order), so they are the same doubles.
"""

from __future__ import annotations

from array import array

from .fileformat import Section, decode_postings
from .model import AGE_BANDS, PRICE_BANDS
from .plan import Plan
from .reader import IndexFile
from .suggest import nearest_word

__all__ = ["FacetCounts", "PyEngine"]

#: Facet counts: per facet name, category or brand id, or band label -> count (nonzero).
FacetCounts = dict[str, dict[int | str, int]]


class PyEngine:
    """Executes plans over one index file and the price and stock overlay."""

    def __init__(self, index: IndexFile, price: array[int], stock: bytearray) -> None:
        self.index = index
        self.price = price
        self.stock = stock
        v = index.views
        self.norm = v[Section.NORM]
        self.df = v[Section.TERM_DF]
        self.at = v[Section.TERM_POSTINGS]
        self.postings = v[Section.POSTINGS]
        self.category = v[Section.CATEGORY]
        self.brand = v[Section.BRAND]
        self.age_min = v[Section.AGE_MIN]
        self.age_max = v[Section.AGE_MAX]
        self.created = v[Section.CREATED]
        self.k1p1 = float(index.meta["k1"]) + 1.0

    def _postings(self, term: int) -> tuple[list[int], list[int]]:
        return decode_postings(self.postings[self.at[term] : self.at[term + 1]], self.df[term])

    def _clause(self, clause: tuple[tuple[int, float], ...]) -> dict[int, float]:
        scores: dict[int, float] = {}
        k1p1, norm = self.k1p1, self.norm
        for term, weight in clause:
            docs, tfs = self._postings(term)
            for doc, tf in zip(docs, tfs, strict=True):
                scores[doc] = scores.get(doc, 0.0) + weight * tf * k1p1 / (tf + norm[doc])
        return scores

    def _matches(self, plan: Plan) -> dict[int, float]:
        if not plan.clauses:
            return dict.fromkeys(range(self.index.n_docs), 0.0)
        per_clause = [self._clause(clause) for clause in plan.clauses]
        common = set(per_clause[0]).intersection(*per_clause[1:])
        return {doc: sum((c[doc] for c in per_clause), 0.0) for doc in common}

    def _keep(self, plan: Plan, doc: int) -> bool:
        category = self.category[doc]
        if plan.category_mask and (category < 0 or not plan.category_mask[category]):
            return False
        if plan.brand_mask and not plan.brand_mask[self.brand[doc]]:
            return False
        if not plan.price_min <= self.price[doc] <= plan.price_max:
            return False
        if plan.age >= 0 and not (
            self.age_min[doc] <= plan.age_to and self.age_max[doc] >= plan.age
        ):
            return False
        return plan.in_stock < 0 or self.stock[doc] == plan.in_stock

    def _key(self, plan: Plan, doc: int, score: float) -> tuple[float, ...]:
        parts: list[float] = []
        for code in plan.keys:
            if code == 0:
                parts.append(-score)
            elif code == 1:
                parts.append(float(self.price[doc]))
            elif code == 2:
                parts.append(-float(self.price[doc]))
            elif code == 4:
                parts.append(-float(self.created[doc]))
            elif code == 5:
                parts.append(-float(self.stock[doc]))
        parts.append(float(doc))
        return tuple(parts)

    def facets(self, docs: list[int]) -> FacetCounts:
        """Facet counts of *docs*; a category counts its whole subtree."""
        categories = self.index.meta["categories"]
        subtree = [0] * len(categories)
        brands = [0] * len(self.index.meta["brands"])
        prices = [0] * len(PRICE_BANDS)
        ages = [0] * len(AGE_BANDS)
        for doc in docs:
            node = self.category[doc]
            while node >= 0:
                subtree[node] += 1
                node = int(categories[node][1])
            brands[self.brand[doc]] += 1
            price = self.price[doc]
            for n, (_, low, high) in enumerate(PRICE_BANDS):
                if low <= price < high:
                    prices[n] += 1
            for n, (_, low, high) in enumerate(AGE_BANDS):
                if self.age_min[doc] <= high and self.age_max[doc] >= low:
                    ages[n] += 1
        return {
            "category": {int(categories[n][0]): c for n, c in enumerate(subtree) if c},
            "brand": {int(self.index.meta["brands"][n][0]): c for n, c in enumerate(brands) if c},
            "price_band": {PRICE_BANDS[n][0]: c for n, c in enumerate(prices) if c},
            "age_band": {AGE_BANDS[n][0]: c for n, c in enumerate(ages) if c},
        }

    def update(self, doc: int, price: int, stock: int) -> None:
        """Nothing to do: this engine reads the overlay arrays themselves."""

    def close(self) -> None:
        """Nothing to release: the views belong to the index file."""

    def nearest_word(self, word: str) -> str | None:
        """The correction of *word* (see :mod:`.suggest`)."""
        return nearest_word(self.index, word)

    def run(self, plan: Plan) -> tuple[list[int], int, FacetCounts | None]:
        """The page of document numbers, the total and the facet counts (or None)."""
        matches = {} if plan.empty else self._matches(plan)
        for term in plan.excluded:
            for doc in self._postings(term)[0]:
                matches.pop(doc, None)
        kept = [doc for doc in matches if self._keep(plan, doc)]
        facets = self.facets(kept) if plan.facets else None
        kept.sort(key=lambda doc: self._key(plan, doc, matches[doc]))
        return kept[plan.offset : plan.offset + plan.limit], len(kept), facets
