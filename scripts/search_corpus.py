"""The catalog and the query mix ``bench_search.py`` runs every engine on.

The catalog: Zipf-Mandelbrot words made of syllables, a three-level category
tree, Zipf brands and categories, log-normal prices. The queries: 1-3 words
chosen by Zipf, half with a category or brand filter, a third with a price
range, half sorted by relevance and the rest by price, popularity or date.
Both are drawn from fixed seeds, so every engine (and every run) gets the same.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field

from sleigh.core_ext.search import ProductDoc, Query

SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]
SORTS_OTHER = ("price_asc", "price_desc", "popularity", "newest")


@dataclass
class Catalog:
    """A generated catalog and its category tree."""

    docs: list[ProductDoc]
    parents: dict[int, int | None]
    names: dict[int, str]
    brands: list[int]
    words: list[str]
    cum: list[float] = field(default_factory=list)

    def subtree(self, category: int) -> list[int]:
        """*category* and every category under it."""
        out = [category]
        for child, parent in self.parents.items():
            if parent is not None and parent in out:
                out.append(child)
        return out


def make_words(rng: random.Random, count: int, taken: set[str]) -> list[str]:
    words: list[str] = []
    while len(words) < count:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in taken:
            taken.add(word)
            words.append(word)
    return words


def zipf_cum(n: int, offset: float, s: float = 1.0) -> list[float]:
    return list(itertools.accumulate(1.0 / (r + offset) ** s for r in range(1, n + 1)))


def _tree(rng: random.Random, taken: set[str]) -> tuple[dict[int, int | None], dict[int, str]]:
    parents: dict[int, int | None] = {}
    names: dict[int, str] = {}
    pool = iter(make_words(rng, 12 + 12 * 8 + 12 * 8 * 8, taken))
    next_id = itertools.count(1)
    for _ in range(12):
        root = next(next_id)
        parents[root], names[root] = None, next(pool)
        for _ in range(8):
            mid = next(next_id)
            parents[mid], names[mid] = root, next(pool)
            for _ in range(8):
                leaf = next(next_id)
                parents[leaf], names[leaf] = mid, next(pool)
    return parents, names


def _path(parents: dict[int, int | None], leaf: int) -> list[int]:
    path = [leaf]
    node = parents[leaf]
    while node is not None:
        path.insert(0, node)
        node = parents[node]
    return path


def make_catalog(n: int, seed: int = 5) -> Catalog:
    """*n* products with realistic skew (see the module docstring)."""
    rng = random.Random(seed)
    taken: set[str] = set()
    words = make_words(rng, 30_000, taken)
    brand_names = make_words(rng, 3_000, taken)
    parents, names = _tree(rng, taken)
    leaves = [c for c in parents if c not in set(parents.values())]
    word_cum, brand_cum, leaf_cum = (
        zipf_cum(30_000, 10.0),
        zipf_cum(3_000, 5.0),
        zipf_cum(len(leaves), 5.0),
    )
    docs = []
    brand_draws = rng.choices(range(3_000), cum_weights=brand_cum, k=n)
    leaf_draws = rng.choices(leaves, cum_weights=leaf_cum, k=n)
    lengths = [(rng.randint(3, 7), rng.randint(15, 35)) for _ in range(n)]
    draws = rng.choices(words, cum_weights=word_cum, k=sum(a + b for a, b in lengths))
    paths: dict[int, list[int]] = {}
    at = 0
    for i in range(1, n + 1):
        brand, leaf = brand_draws[i - 1], leaf_draws[i - 1]
        path = paths.get(leaf)
        if path is None:
            path = paths[leaf] = _path(parents, leaf)
        n_title, n_body = lengths[i - 1]
        title, body = draws[at : at + n_title], draws[at + n_title : at + n_title + n_body]
        at += n_title + n_body
        age_min = rng.choice((0, 0, 1, 3, 3, 5, 6, 8, 12))
        docs.append(
            ProductDoc(
                id=i,
                title=" ".join(title),
                brand_id=brand + 1,
                brand=brand_names[brand],
                category_path=tuple((c, names[c]) for c in path),
                description=" ".join(body),
                price_cents=min(int(math.exp(rng.gauss(math.log(2500), 0.9))), 10**7),
                age_min=age_min,
                age_max=age_min + rng.choice((2, 4, 10, 99)),
                popularity=int(rng.paretovariate(1.2) * 10),
                created=1_600_000_000 + rng.randrange(150_000_000),
                in_stock=rng.random() < 0.85,
            )
        )
    return Catalog(docs, parents, names, list(range(1, 3_001)), words, word_cum)


def make_queries(catalog: Catalog, count: int, seed: int = 11) -> list[Query]:
    """The query mix of the module docstring."""
    rng = random.Random(seed)
    inner = [c for c, p in catalog.parents.items() if p is None or catalog.parents[p] is None]
    query_cum = zipf_cum(len(catalog.words), 10.0)
    brand_cum = zipf_cum(len(catalog.brands), 5.0)
    queries = []
    for _ in range(count):
        text = " ".join(rng.choices(catalog.words, cum_weights=query_cum, k=rng.randint(1, 3)))
        category: int | None = None
        brands: tuple[int, ...] = ()
        if rng.random() < 0.5:
            if rng.random() < 0.5:
                category = rng.choice(inner)
            else:
                brands = (rng.choices(catalog.brands, cum_weights=brand_cum)[0],)
        low = high = None
        if rng.random() < 1 / 3:
            low = rng.choice((0, 1000, 2000, 5000))
            high = low + rng.choice((1500, 3000, 10000))
        sort = "relevance" if rng.random() < 0.5 else rng.choice(SORTS_OTHER)
        queries.append(
            Query(
                text=text,
                category=category,
                brands=brands,
                price_min=low,
                price_max=high,
                sort=sort,
            )
        )
    return queries
